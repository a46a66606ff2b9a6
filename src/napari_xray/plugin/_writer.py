"""The npe2 writer: image and labels layers as an animated GIF, coloured as napari shows them.

Each frame is drawn the way napari draws the layer on its black canvas: an Image
layer's values through its contrast limits and gamma into its colormap (256
levels), a Labels layer in its label colours (label 0 transparent), both at the
layer's opacity. Several layers make one grid GIF, placed as napari's grid view
places them (first layer top left, row by row). The atomic write is
:func:`napari_xray.io.gif.write_gif_frames`; the frame duration comes from the
call, else the layer's ``metadata["gif_duration"]``, else 0.1 s.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xray.io.gif import DEFAULT_GIF_DURATION, write_gif_frames
from napari_xray.plugin.layers import layer_kind, unwrap

if TYPE_CHECKING:  # pragma: no cover
    from napari.layers import Layer

__all__ = [
    "DURATION_METADATA_KEY",
    "GifExportError",
    "shown_frames",
    "write_gif",
    "write_gif_layers",
    "write_layers_gif",
]

#: Layer-metadata key a layer can carry to set its own GIF frame duration (seconds).
DURATION_METADATA_KEY = "gif_duration"
#: Levels of an image layer's colormap in a GIF frame (a GIF frame holds 256 colours).
_LEVELS = 256


class GifExportError(RuntimeError):
    """napari's writer could not make the GIF; the message says why and what to do.

    Not a ValueError on purpose: napari takes a ValueError from a writer for "this
    writer does not apply" and then saves nothing without saying why.
    """


def _duration_of(layers: Sequence[Layer]) -> float:
    for layer in layers:
        metadata = layer.metadata if isinstance(layer.metadata, Mapping) else {}
        value = metadata.get(DURATION_METADATA_KEY)
        if value is not None:
            return value
    return DEFAULT_GIF_DURATION


def _layer_from(data: Any, meta: Mapping[str, Any] | None, layer_type: str) -> Layer:
    """The napari layer that ``(data, meta, layer_type)`` describes (what napari would show)."""
    from napari.layers import Layer

    meta = dict(meta or {})
    full = data[0] if meta.get("multiscale") else data
    if np.size(full) == 0:
        raise ValueError(f"the layer's data of shape {np.shape(full)} is empty; nothing to save")
    return Layer.create(data, meta, layer_type)


def _frames_of(data: Any, trailing: int) -> np.ndarray:
    """``data`` as frames: every leading axis before the last ``trailing`` ones flattened."""
    array = np.asarray(data)
    if array.ndim < trailing:
        raise ValueError(f"a GIF needs 2D frames, got data of shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"the layer's data of shape {array.shape} is empty; nothing to save")
    return array.reshape((-1, *array.shape[array.ndim - trailing :]))


def _over_black(rgba: np.ndarray, opacity: float) -> np.ndarray:
    """RGBA floats in 0..1 drawn at ``opacity`` on napari's black canvas, as uint8 RGB."""
    rgb = rgba[..., :3] * (rgba[..., 3:4] * float(opacity))
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _image_frames(layer) -> np.ndarray:
    data = layer.data[0] if layer.multiscale else layer.data
    low, high = (float(v) for v in layer.contrast_limits)
    span = high - low if high > low else 1.0
    gamma = float(layer.gamma)
    if layer.rgb:  # every channel (alpha too) through the contrast limits and gamma
        frames = _frames_of(data, 3).astype(np.float32)
        if frames.shape[-1] not in (3, 4):
            raise ValueError(f"RGB data must end in 3 or 4 channels, got {frames.shape}")
        values = np.clip((frames - low) / span, 0.0, 1.0) ** gamma
        if values.shape[-1] == 3:
            values = np.concatenate([values, np.ones_like(values[..., :1])], axis=-1)
        return _over_black(values, layer.opacity)
    frames = _frames_of(data, 2)
    if frames.dtype.kind not in "biuf":
        raise ValueError(
            f"'{layer.name}' has dtype {frames.dtype}; a GIF needs real-valued pixels"
        )
    # Contrast limits, then gamma, then the colormap, as napari's shader does; the
    # colormap at 256 levels, so each frame has at most 256 colours (a GIF stores
    # them exactly).
    palette = _over_black(
        np.asarray(layer.colormap.map(np.linspace(0.0, 1.0, _LEVELS)), np.float32),
        layer.opacity,
    )
    out = np.empty((*frames.shape, 3), np.uint8)
    for index, frame in enumerate(frames):
        values = (frame.astype(np.float32) - low) / span
        finite = np.isfinite(values)
        shown = np.clip(np.where(finite, values, 0.0), 0.0, 1.0) ** gamma
        out[index] = palette[np.rint(shown * (_LEVELS - 1)).astype(np.intp)]
        if not finite.all():
            out[index][~finite] = 0  # napari draws NaN transparent: the black canvas
    return out


def _labels_frames(layer) -> np.ndarray:
    data = layer.data[0] if layer.multiscale else layer.data
    frames = _frames_of(data, 2)
    out = np.empty((*frames.shape, 3), np.uint8)
    for index, frame in enumerate(frames):
        labels, inverse = np.unique(frame, return_inverse=True)
        colours = _over_black(np.asarray(layer.colormap.map(labels), np.float32), layer.opacity)
        out[index] = colours[inverse.reshape(frame.shape)]
    return out


def shown_frames(layer: Layer) -> np.ndarray:
    """The frames of an Image or Labels layer as napari draws them, as uint8 RGB.

    Returns
    -------
    numpy.ndarray of uint8, shape (N, H, W, 3)
        One frame per plane (leading axes flattened; a 2D layer gives one):
        an Image layer mapped through its contrast limits, gamma and colormap
        (256 levels; RGB images channel by channel), a Labels layer in its label
        colours, at the layer's opacity over black.

    Raises
    ------
    TypeError
        Any other kind of layer (Points, Shapes …); the message names it.
    ValueError
        Data that is empty, not real-valued or has fewer than two dimensions.
    """
    from napari.layers import Image, Labels

    layer = unwrap(layer)
    if isinstance(layer, Labels):
        return _labels_frames(layer)
    if isinstance(layer, Image):
        return _image_frames(layer)
    raise TypeError(_not_shown(layer.name, layer_kind(layer)))


def _not_shown(name: str, kind: str) -> str:
    """Why a layer of ``kind`` cannot go into a GIF, and what to do instead."""
    return (
        f"'{name}' is a {kind} layer; an animated GIF can show image and labels layers "
        "only. Select only image or labels layers, or save this one with another writer."
    )


def _grid_shape(count: int) -> tuple[int, int]:
    """Rows and columns of napari's automatic grid for ``count`` layers."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def _grid(frames: list[np.ndarray], names: list[str]) -> np.ndarray:
    """Frames of several layers side by side in napari's grid order (row by row)."""
    counts = {len(f) for f in frames} - {1}
    if len(counts) > 1:
        described = ", ".join(f"'{n}' {len(f)}" for n, f in zip(names, frames, strict=True))
        raise ValueError(
            f"the layers have different numbers of frames ({described}); select layers with "
            "the same number of frames (single images may be added to any) for a grid GIF"
        )
    count = counts.pop() if counts else 1
    height = max(f.shape[1] for f in frames)
    width = max(f.shape[2] for f in frames)
    rows, columns = _grid_shape(len(frames))
    out = np.zeros((count, rows * height, columns * width, 3), np.uint8)
    for position, layer_frames in enumerate(frames):
        row, column = divmod(position, columns)
        _, h, w, _ = layer_frames.shape
        top = row * height + (height - h) // 2
        left = column * width + (width - w) // 2
        out[:, top : top + h, left : left + w] = layer_frames  # a single image repeats
    return out


def write_layers_gif(
    path: str | os.PathLike, layers: Sequence[Layer], *, duration: float | None = None
) -> Path:
    """Save napari layers as an animated GIF of what napari shows: one layer, or a grid.

    Parameters
    ----------
    path : str or path-like
        Destination ending in ``.gif``; its folder must exist. An existing file
        is replaced only once the new one is completely written.
    layers : sequence of Image or Labels layers
        One layer gives its frames (:func:`shown_frames`); several give one grid
        GIF, the first layer top left, row by row, as napari's grid view.
    duration : float, optional
        Display time of each frame in seconds; default the first layer's
        ``metadata["gif_duration"]``, else 0.1.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    TypeError
        A layer that is not an Image or Labels layer (the message names it).
    ValueError
        No layers, layers with different numbers of frames, a path not ending in
        ``.gif`` or a bad duration.
    OSError
        The folder does not exist or is not writable.
    """
    layers = [unwrap(layer) for layer in layers]
    if not layers:
        raise ValueError("no layers to save; select one or more image or labels layers")
    rendered = [shown_frames(layer) for layer in layers]
    frames = rendered[0] if len(rendered) == 1 else _grid(rendered, [ly.name for ly in layers])
    if duration is None:
        duration = _duration_of(layers)
    return write_gif_frames(path, frames, duration=duration)


def write_gif(
    path: str | os.PathLike,
    data: Any,
    meta: Mapping[str, Any] | None = None,
    *,
    duration: float | None = None,
    layer_type: str = "image",
) -> list[str]:
    """Save one layer's data, coloured as napari shows it, as an animated GIF.

    Parameters
    ----------
    path : str or path-like
        Destination ending in ``.gif``.
    data : array_like
        The layer's data (a multiscale layer's list: its full resolution is used).
    meta : dict, optional
        The layer's attributes as napari passes them to writers (``colormap``,
        ``contrast_limits``, ``gamma``, ``opacity``, ``rgb``, ``multiscale``,
        ``metadata`` …); what is missing takes napari's default for ``data``
        (gray, contrast limits over the data's range).
    duration : float, optional
        Display time of each frame in seconds (default: ``metadata["gif_duration"]``,
        else 0.1).
    layer_type : str
        ``"image"`` or ``"labels"``.

    Returns
    -------
    list of str
        ``[path]``, the file written.

    Raises
    ------
    TypeError, ValueError, OSError
        As :func:`write_layers_gif`.
    """
    layer = _layer_from(data, meta, layer_type)
    return [str(write_layers_gif(path, [layer], duration=duration))]


def write_gif_layers(path: str, layer_data: list[tuple]) -> list[str]:
    """npe2 writer (File ▸ Save Selected Layers… ▸ .gif): the layers as one animated GIF.

    ``layer_data`` is napari's list of ``(data, meta, layer_type)``; one layer is
    saved as its frames, several as a grid (:func:`write_layers_gif`).

    Raises
    ------
    GifExportError
        A layer is not an image or labels layer (the message names it), or the
        layers or the path cannot make a GIF; napari shows the message.
    OSError
        The folder does not exist or is not writable.
    """
    layers = []
    for data, meta, layer_type in layer_data:
        if layer_type not in ("image", "labels"):
            name = (meta or {}).get("name", "the layer")
            raise GifExportError(_not_shown(name, layer_type.capitalize()))
        layers.append(_layer_from(data, meta, layer_type))
    try:
        return [str(write_layers_gif(path, layers))]
    except (TypeError, ValueError) as error:
        raise GifExportError(str(error)) from error
