"""The npe2 writer: an image layer as an animated GIF (File ▸ Save Selected Layers…).

napari hands the writer the layer's data and its attributes (``meta``); this
adapter reads napari's conventions from them (``multiscale``, ``rgb``, the
frame duration in ``metadata["gif_duration"]``) and leaves the scaling and the
atomic write to :func:`napari_xray.io.gif.save_gif`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from napari_xray.io.gif import DEFAULT_GIF_DURATION, save_gif

__all__ = ["DURATION_METADATA_KEY", "write_gif"]

#: Layer-metadata key a layer can carry to set its own GIF frame duration (seconds).
DURATION_METADATA_KEY = "gif_duration"


def _duration_from(meta: Mapping[str, Any]) -> Any:
    metadata = meta.get("metadata") or {}
    value = metadata.get(DURATION_METADATA_KEY) if isinstance(metadata, Mapping) else None
    return DEFAULT_GIF_DURATION if value is None else value


def write_gif(
    path: str | os.PathLike,
    data: Any,
    meta: Mapping[str, Any] | None = None,
    *,
    duration: float | None = None,
) -> list[str]:
    """Save image-layer data as an animated GIF (npe2 single-layer writer).

    Parameters
    ----------
    path : str or path-like
        Destination ending in ``.gif``; its folder must exist. An existing file
        is replaced only once the new one is completely written.
    data : array_like
        The layer's data (a multiscale layer's list: its full resolution is used).
    meta : dict, optional
        The layer's attributes as napari passes them (``rgb``, ``multiscale``,
        ``metadata`` …). ``metadata["gif_duration"]`` (seconds) sets the frame
        duration when ``duration`` is not given.
    duration : float, optional
        Display time of each frame in seconds (default 0.1).

    Returns
    -------
    list of str
        ``[path]``, the file written.

    Raises
    ------
    ValueError
        ``path`` does not end in ``.gif``, the duration is not a positive
        number, or the data cannot be scaled to frames
        (see :func:`napari_xray.io.gif.gif_frames`).
    OSError
        The folder does not exist or is not writable.
    """
    meta = dict(meta or {})
    if duration is None:
        duration = _duration_from(meta)
    if meta.get("multiscale"):
        data = data[0]
    written = save_gif(path, data, duration=duration, rgb=bool(meta.get("rgb", False)))
    return [str(written)]
