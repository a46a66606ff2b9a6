"""Animated GIFs of image stacks: frames scaled to uint8, written atomically.

:func:`gif_frames` scales each frame the tutorial's way (``255 · (x − min) /
(max − min)``, rounded; a constant frame becomes 0); :func:`save_gif` writes them
to a temporary file in the same folder and moves it into place with
``os.replace``, so a failed save never leaves a half-written GIF. Pillow's GIF
encoder stores consecutive identical frames once, with their durations added:
the animation looks the same but has fewer frames.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from napari_xray.engine.filters import normalize

__all__ = ["DEFAULT_GIF_DURATION", "gif_frames", "save_gif", "write_gif_frames"]

#: Display time of each frame (seconds) when the caller sets none.
DEFAULT_GIF_DURATION = 0.1


def _scale_rgb(frames: np.ndarray) -> np.ndarray:
    """Per-frame min/max scaling of ``(N, H, W, C)`` colour frames to 0..255 float32."""
    out = np.empty(frames.shape, dtype=np.float32)
    for index, frame in enumerate(frames):
        frame = frame.astype(np.float32)
        low, high = float(frame.min()), float(frame.max())
        span = high - low
        out[index] = 0.0 if span <= 0 or not math.isfinite(span) else (frame - low) * (255.0 / span)
    return out


def gif_frames(data, *, rgb: bool = False) -> np.ndarray:
    """The frames of image-layer data as GIF-ready uint8, scaled the tutorial's way.

    Parameters
    ----------
    data : array_like
        ``(H, W)``, ``(N, H, W)`` or more leading axes (flattened into frames);
        with ``rgb`` the last axis holds 3 or 4 channels (alpha is dropped).
    rgb : bool
        Whether the last axis is colour.

    Returns
    -------
    numpy.ndarray of uint8
        ``(N, H, W)`` (or ``(N, H, W, 3)``): each frame mapped to 0..255 with
        ``255 · (x − min) / (max − min)`` and rounded; a constant frame gives 0.

    Raises
    ------
    ValueError
        Empty, complex, non-numeric data, NaN/inf values, or too few dimensions.
    """
    array = np.asarray(data)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.size == 0:
        raise ValueError(f"the layer's data of shape {array.shape} is empty; nothing to save")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"cannot save data of dtype {array.dtype} as GIF; pass real numbers")
    if rgb:
        if array.ndim < 3 or array.shape[-1] not in (3, 4):
            raise ValueError(f"RGB data must end in 3 or 4 channels, got shape {array.shape}")
        frames = array[..., :3].reshape((-1, *array.shape[-3:-1], 3))
        if array.dtype.kind == "f" and not np.isfinite(frames).all():
            raise ValueError("the image contains NaN or infinite values; replace them first")
        scaled = _scale_rgb(frames)
    else:
        if array.ndim < 2:
            raise ValueError(f"a GIF needs 2D frames, got data of shape {array.shape}")
        frames = array.reshape((-1, *array.shape[-2:]))
        scaled = normalize(frames)  # the engine's per-frame tutorial formula
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def save_gif(
    path: str | os.PathLike,
    data: Any,
    *,
    duration: float = DEFAULT_GIF_DURATION,
    rgb: bool = False,
) -> Path:
    """Save an image stack as an animated GIF that loops forever.

    Parameters
    ----------
    path : str or path-like
        Destination ending in ``.gif``; its folder must exist. An existing file
        is replaced only once the new one is completely written.
    data : array_like
        ``(H, W)``, ``(N, H, W)`` or more leading axes; see :func:`gif_frames`.
    duration : float
        Display time of each frame in seconds (default 0.1).
    rgb : bool
        Whether the last axis of ``data`` is colour.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        ``path`` does not end in ``.gif``, the duration is not a positive
        number, or the data cannot be scaled to frames (see :func:`gif_frames`).
    OSError
        The folder does not exist or is not writable.
    """
    _check_path_and_duration(path, duration)
    return write_gif_frames(path, gif_frames(data, rgb=rgb), duration=duration)


def _check_path_and_duration(path: str | os.PathLike, duration: Any) -> float:
    """The duration in seconds; raises a ValueError for a non-.gif path or a bad duration."""
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"{path} does not end in .gif; pass a .gif file name")
    try:
        seconds = float(duration)
    except (TypeError, ValueError):
        raise ValueError(f"duration must be a number of seconds, got {duration!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    return seconds


def write_gif_frames(
    path: str | os.PathLike, frames: np.ndarray, *, duration: float = DEFAULT_GIF_DURATION
) -> Path:
    """Write ready uint8 frames, unchanged, as an animated GIF that loops forever.

    Parameters
    ----------
    path : str or path-like
        Destination ending in ``.gif``; written atomically, as :func:`save_gif`.
    frames : numpy.ndarray of uint8
        ``(N, H, W)`` gray or ``(N, H, W, 3)`` RGB frames (e.g. already coloured
        the way a viewer shows them). A frame with at most 256 colours is stored
        exactly.
    duration : float
        Display time of each frame in seconds.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        ``path`` does not end in ``.gif``, a bad duration, or frames that are not
        uint8 ``(N, H, W)`` / ``(N, H, W, 3)``.
    OSError
        The folder does not exist or is not writable.
    """
    seconds = _check_path_and_duration(path, duration)
    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or not (
        frames.ndim == 3 or (frames.ndim == 4 and frames.shape[-1] == 3)
    ):
        raise ValueError(
            f"GIF frames must be uint8 (N, H, W) or (N, H, W, 3), got {frames.dtype} "
            f"{frames.shape}"
        )

    import imageio.v3 as iio

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist; create it first")
    # A unique name beside the target (same file system, so os.replace is atomic),
    # created by the writer itself with the usual permissions.
    temporary = folder / f".{path.stem}.{uuid.uuid4().hex}.partial.gif"
    try:
        iio.imwrite(
            temporary,
            frames,
            extension=".gif",
            is_batch=True,
            duration=max(1, round(seconds * 1000)),  # milliseconds per frame
            loop=0,
        )
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
