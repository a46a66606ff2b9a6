"""Layer helpers shared by the napari-xray widgets: which layers can be filtered,
which frame is on screen, colormaps, and the name, metadata and keyword arguments
of an output layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

    from napari_xray.engine.operations import Operation

__all__ = [
    "METADATA_KEY",
    "data_range",
    "displayed_frame",
    "displayed_plane",
    "image_layer_choices",
    "input_problem",
    "LayerPickerMixin",
    "labels_colormap",
    "layer_alive",
    "referenced_layer",
    "layer_kind",
    "qt_alive",
    "napari_colormap",
    "output_kwargs",
    "output_metadata",
    "output_name",
    "same_layer",
    "spatial_kwargs",
    "unwrap",
]

#: Key of the napari-xray entry in an output layer's ``metadata``.
METADATA_KEY = "napari_xray"

_OPEN_HINT = "open one (File ▸ Open Sample ▸ napari-xray ▸ Chest X-ray series)"


def unwrap(obj: Any) -> Any:
    """The napari object behind ``obj`` when it is a proxy, else ``obj`` itself.

    napari hands plugin widgets a ``PublicOnlyProxy`` of the viewer, and every
    layer reached through it (``viewer.layers[0]``, ``layers.selection.active``,
    the return of ``viewer.add_image``) is a new proxy: ``proxy is layer`` is
    false and ``id(proxy)`` changes from one access to the next. Compare and
    store the objects this returns.
    """
    import wrapt

    while isinstance(obj, wrapt.ObjectProxy):
        obj = obj.__wrapped__
    return obj


def same_layer(first: Any, second: Any) -> bool:
    """True when ``first`` and ``second`` are the same layer, proxied or not (never for None)."""
    if first is None or second is None:
        return False
    return unwrap(first) is unwrap(second)


def layer_kind(layer: Any) -> str:
    """The napari layer type of ``layer`` as people read it: ``"Image"``, ``"Points"`` …"""
    return type(unwrap(layer)).__name__


def qt_alive(widget) -> bool:
    """False once the Qt object behind ``widget`` (a magicgui widget or a QWidget) is deleted."""
    try:
        getattr(widget, "native", widget).objectName()
    except RuntimeError:
        return False
    return True


def data_key(layer) -> tuple:
    """Identifies a layer's data as it is now: napari-xray refills a result's buffer in
    place, so its operation, parameters and completeness count as well as the array."""
    entry = layer.metadata.get(METADATA_KEY) if isinstance(layer.metadata, dict) else None
    return (id(layer.data), np.shape(layer.data), repr(entry))


def still_computing(layer) -> bool:
    """Whether napari-xray is still computing frames of this result (other than the one
    on screen); its figures over the stack wait for them."""
    entry = layer.metadata.get(METADATA_KEY) if isinstance(layer.metadata, dict) else None
    return isinstance(entry, dict) and entry.get("complete") is False


def reset_layer_choices(combo) -> None:
    """New choices for the magicgui layer picker ``combo``, keeping its layer if it is
    still a choice: magicgui matches choices by name, so a renamed layer was lost."""
    layer = combo.value
    combo.reset_choices()
    if layer is not None and combo.value is not layer and any(
            choice is layer for choice in combo.choices):  # fmt: skip
        combo.value = layer


class LayerPickerMixin:
    """The image-layer picker and status line that the X-ray widgets share.

    The widget defines ``self._image`` (a magicgui ComboBox of layers) and
    ``self._status`` (a Label); after the viewer closes, updates are ignored.
    """

    @property
    def input_layer(self) -> Layer | None:
        """The image layer chosen in the picker (``None`` when there is none)."""
        return self._image.value

    @input_layer.setter
    def input_layer(self, layer: Layer) -> None:
        self._image.reset_choices()
        self._image.value = unwrap(layer)

    @property
    def status(self) -> str:
        """The status line's text."""
        return str(self._status.value)

    def _refresh_choices(self, event=None) -> None:
        if qt_alive(self):
            reset_layer_choices(self._image)

    def _set_status(self, text: str) -> None:
        if qt_alive(self):
            self._status.value = text


def input_problem(layer: Layer | None) -> str | None:
    """Why ``layer`` cannot be filtered, as a sentence saying what to do instead.

    Returns
    -------
    str or None
        ``None`` when ``layer`` is a grayscale, single-resolution Image layer
        holding one 2D frame ``(H, W)`` or a stack of frames ``(N, H, W)`` of
        real numbers in memory; otherwise the reason (no layer, a
        Labels/Points/Shapes layer, an RGB image, a multiscale image, the wrong
        number of dimensions, lazy Dask/Zarr data or a non-numeric dtype).
    """
    from napari.layers import Image

    if layer is None:
        return f"No image layer to filter: {_OPEN_HINT} and choose it above."
    if not isinstance(layer, Image):
        return (
            f"'{layer.name}' is a {layer_kind(layer)} layer; the X-ray filters work on "
            "grayscale Image layers. Choose an image layer above."
        )
    if layer.rgb:
        return (
            f"'{layer.name}' is an RGB(A) image; the X-ray filters need a grayscale image. "
            "Split it first (right-click the layer ▸ Split RGB) and choose one channel."
        )
    if layer.multiscale:
        return f"'{layer.name}' is a multiscale image; choose a single-resolution image layer."
    if layer.ndim not in (2, 3):
        return (
            f"'{layer.name}' has {layer.ndim} dimensions; choose a 2D image (H, W) or a "
            "stack of 2D frames (N, H, W)."
        )
    if not isinstance(layer.data, np.ndarray):
        return (
            f"'{layer.name}' holds lazy ({type(layer.data).__name__}) data, e.g. a batch store; "
            "the filters work on frames in memory. Load the frames you want first, e.g. "
            "viewer.add_image(np.asarray(layer.data[:9])), and choose that layer."
        )
    dtype = np.dtype(layer.data.dtype)
    if dtype.kind not in "biuf":
        return f"'{layer.name}' has dtype {dtype}; choose an image of integer or float pixels."
    return None


def image_layer_choices(viewer: napari.Viewer, exclude=None) -> list[tuple[str, Layer]]:
    """``(name, layer)`` of every Image layer in ``viewer`` for a layer picker.

    RGB and other unsuitable images are listed too (choosing one makes the widget
    say why it cannot filter it); ``exclude(layer) -> bool`` hides layers such as
    a widget's own outputs.
    """
    from napari.layers import Image

    if viewer is None:
        return []
    layers = [unwrap(layer) for layer in unwrap(viewer).layers]
    return [
        (layer.name, layer)
        for layer in layers
        if isinstance(layer, Image) and not (exclude is not None and exclude(layer))
    ]


def referenced_layer(viewer, ref) -> Layer | None:
    """The layer the weak reference ``ref`` (or None) points at, if it is still in ``viewer``."""
    layer = ref() if ref is not None else None
    return layer if layer_alive(viewer, layer) else None


def layer_alive(viewer: napari.Viewer, layer: Layer | None) -> bool:
    """True when ``layer`` (this very layer, proxied or not) is still in ``viewer.layers``."""
    if layer is None or viewer is None:
        return False
    target = unwrap(layer)
    try:
        return any(unwrap(candidate) is target for candidate in unwrap(viewer).layers)
    except RuntimeError:  # the viewer's Qt side is gone
        return False


def displayed_plane(viewer: napari.Viewer, layer: Layer) -> tuple[int, ...]:
    """Indices along the leading (non-image) axes of ``layer`` of the plane on screen.

    Follows the viewer's dims point through the layer's own transform
    (scale/translate), rounding as napari's slicer does, clipped to the data.

    Returns
    -------
    tuple of int
        Empty for a 2D layer; ``(frame,)`` for a stack ``(N, H, W)``.
    """
    leading = layer.ndim - 2
    if leading <= 0:
        return ()
    shape = layer.data.shape
    coords = layer.world_to_data(viewer.dims.point)
    indices = []
    for axis in range(leading):
        value = float(coords[axis])
        index = 0 if not math.isfinite(value) else int(np.round(value))
        indices.append(int(np.clip(index, 0, shape[axis] - 1)))
    return tuple(indices)


def displayed_frame(viewer: napari.Viewer, layer: Layer) -> int | None:
    """The index of the frame on screen for a stack layer ``(N, H, W)``; ``None`` for 2D."""
    plane = displayed_plane(viewer, layer)
    return plane[0] if len(plane) == 1 else None


def data_range(layer: Layer) -> tuple[float, float]:
    """The value range of an image layer's data, for ranging intensity sliders.

    Uses napari's ``contrast_limits_range`` (computed once by napari) when the
    layer has one, else the data's min/max. A flat range is widened by one.
    """
    low, high = None, None
    limits = getattr(layer, "contrast_limits_range", None)
    if limits is not None and len(limits) == 2:
        low, high = float(limits[0]), float(limits[1])
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        data = np.asarray(layer.data)
        low, high = float(data.min()), float(data.max())
    if high <= low:
        high = low + 1.0
    return low, high


def napari_colormap(name: str):
    """napari colormap for a matplotlib/napari colormap name (e.g. ``"nipy_spectral"``).

    napari knows most matplotlib names; any other matplotlib colormap is sampled
    at 256 points into a napari ``Colormap``.

    Raises
    ------
    KeyError
        Neither napari nor matplotlib knows ``name``.
    """
    from napari.utils.colormaps import AVAILABLE_COLORMAPS, Colormap, ensure_colormap

    if name in AVAILABLE_COLORMAPS:
        return ensure_colormap(name)
    import matplotlib

    try:
        source = matplotlib.colormaps[name]
    except KeyError:
        raise KeyError(f"unknown colormap {name!r}") from None
    colors = source(np.linspace(0.0, 1.0, 256))
    return ensure_colormap(Colormap(colors, name=name, interpolation="linear"))


def labels_colormap(name: str):
    """A labels colormap drawing label 1 in the top colour of ``name`` (white for gray).

    Binary results (Canny edges, binary masks) then look like the tutorial's
    gray figures: the mask in the colormap's brightest colour, the rest transparent.
    """
    from napari.utils.colormaps import DirectLabelColormap

    top = napari_colormap(name).map(np.array([1.0]))[0]
    return DirectLabelColormap(color_dict={None: (0.0, 0.0, 0.0, 0.0), 1: top})


def spatial_kwargs(layer: Layer) -> dict[str, Any]:
    """Layer keyword arguments that place an output exactly over ``layer``.

    scale, translate, rotate, shear, affine, and (napari ≥ 0.6) units and axis labels.
    """
    kwargs: dict[str, Any] = {
        "scale": tuple(float(v) for v in layer.scale),
        "translate": tuple(float(v) for v in layer.translate),
        "rotate": np.asarray(layer.rotate),
        "shear": np.asarray(layer.shear),
        "affine": np.asarray(layer.affine.affine_matrix),
    }
    for name in ("units", "axis_labels"):
        value = getattr(layer, name, None)
        if value is not None:
            kwargs[name] = tuple(value) if name == "axis_labels" else value
    return kwargs


def output_name(input_layer: Layer, operation: Operation, params: Mapping[str, Any]) -> str:
    """An output layer's name, the operation first: ``"LoG σ=3 · chest X-ray series"``.

    The layer list cuts long names at the end, so the operation and its parameters
    (:meth:`~napari_xray.engine.operations.Operation.layer_name`) come before the
    input's name.
    """
    return f"{operation.layer_name(params)} · {input_layer.name}"


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a parameter value."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def output_metadata(
    operation: Operation,
    params: Mapping[str, Any],
    input_layer: Layer,
    *,
    complete: bool,
) -> dict[str, Any]:
    """The ``napari_xray`` metadata entry of an output layer.

    Returns
    -------
    dict
        ``operation`` (key), ``title``, ``parameters`` (all, resolved), ``input_layer``
        (name) and ``input_layer_id`` (napari's ``unique_id`` of that layer, as text),
        ``version`` (napari-xray's) and ``complete`` (False while frames other than
        the one on screen are still being computed); for a result of a result,
        ``made_from``: the input's own entry as it was when this one was computed.
    """
    import copy

    from napari_xray import __version__

    entry = {
        "operation": operation.key,
        "title": operation.title,
        "parameters": {name: _plain(value) for name, value in operation.resolve(params).items()},
        "input_layer": input_layer.name,
        "input_layer_id": str(getattr(input_layer, "unique_id", "")),
        "version": __version__,
        "complete": bool(complete),
    }
    made_from = input_layer.metadata.get(METADATA_KEY) if isinstance(
        input_layer.metadata, dict) else None
    if isinstance(made_from, dict) and "operation" in made_from:
        entry["made_from"] = copy.deepcopy(made_from)
    return entry


def output_kwargs(
    layer_type: str,
    input_layer: Layer,
    *,
    name: str,
    colormap: str,
    metadata: dict[str, Any],
    contrast_limits: tuple[float, float] | None,
) -> dict[str, Any]:
    """Keyword arguments for a new output layer of ``layer_type`` ("image" or "labels")."""
    kwargs = spatial_kwargs(input_layer)
    kwargs.update(name=name, metadata={METADATA_KEY: metadata})
    if layer_type == "labels":
        kwargs["colormap"] = labels_colormap(colormap)
        kwargs["opacity"] = 1.0  # label 0 is transparent; the mask itself as in the tutorial
    else:
        kwargs["colormap"] = napari_colormap(colormap)
        if contrast_limits is not None:
            kwargs["contrast_limits"] = contrast_limits
    return kwargs
