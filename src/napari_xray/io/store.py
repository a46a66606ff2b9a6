"""Open a ``napari-xray batch`` Zarr store in napari as lazy, Dask-backed layers.

Each result array of the store (``log``, ``gradient``, …; see
:mod:`napari_xray.batch.run` for the layout) becomes one layer whose data is
``dask.array.from_zarr`` of it: napari computes only the frame on screen, one
chunk per layer. Frames the batch has not done (or could not read) show as
zeros, Zarr's fill value.

Nothing here creates a Dask client: slices are computed by Dask's local
threaded scheduler in the napari process. This module imports neither napari
nor Qt, nor ``distributed``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_xray.engine.operations import OPERATIONS

__all__ = [
    "is_xray_store",
    "open_store_layers",
]

LayerDataTuple = tuple  # (data, kwargs, layer_type)

#: Value of ``status[i]`` for a frame not processed yet (also Zarr's fill value).
STATUS_TODO = 0
#: Value of ``status[i]`` once every result of frame ``i`` is written.
STATUS_DONE = 1
#: Value of ``status[i]`` for a frame that could not be read (listed in the report).
STATUS_FAILED = 2
STATUS_CODES = {STATUS_TODO: "to do", STATUS_DONE: "done", STATUS_FAILED: "failed"}

#: ``attrs["napari_xray"]["format"]`` of a batch store.
STORE_FORMAT = "napari-xray-batch"
STORE_VERSION = 1
STATUS_ARRAY = "status"



def _read_metadata(folder: Path) -> dict[str, Any] | None:
    """The parsed ``zarr.json`` of a folder, or ``None`` when there is none / it is not JSON."""
    try:
        with open(folder / "zarr.json", "rb") as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("zarr_format") == 3 else None


def _is_store_group(meta: dict[str, Any] | None) -> bool:
    if not meta or meta.get("node_type") != "group":
        return False
    info = (meta.get("attributes") or {}).get("napari_xray")
    return isinstance(info, dict) and info.get("format") == STORE_FORMAT


def _locate(path: str | os.PathLike) -> tuple[Path, str | None] | None:
    """``(store root, array key or None)`` for a store or one of its result arrays."""
    folder = Path(os.fspath(path)).expanduser()
    meta = _read_metadata(folder)
    if _is_store_group(meta):
        return folder, None
    if meta and meta.get("node_type") == "array" and _is_store_group(
        _read_metadata(folder.parent)
    ):
        info = (meta.get("attributes") or {}).get("napari_xray")
        if isinstance(info, dict) and "filter" in info:
            return folder.parent, folder.name
    return None


def is_xray_store(path: str | os.PathLike) -> bool:
    """Is ``path`` a napari-xray batch store, or one result array inside one?

    Cheap: reads one or two small ``zarr.json`` files (the file list lives in the
    ``status`` array's attributes, not in the group's). Never raises.

    Returns
    -------
    bool
        ``True`` for ``STORE.zarr`` (a Zarr v3 group whose attributes hold
        ``napari_xray.format == "napari-xray-batch"``) and for ``STORE.zarr/<filter>``.
    """
    try:
        return _locate(path) is not None
    except (OSError, TypeError, ValueError):
        return False


def open_store_layers(path: str | os.PathLike) -> list[LayerDataTuple]:
    """Lazy layers for a batch store: one per result array (or the one array named).

    Parameters
    ----------
    path
        ``STORE.zarr`` or ``STORE.zarr/<filter>``.

    Returns
    -------
    list of LayerDataTuple
        ``(data, kwargs, layer_type)`` where ``data`` is a ``dask.array.Array`` of
        shape ``(N, H, W)`` with one chunk per stored chunk of frames (nothing is
        read here except metadata). Boolean results (Canny edges, binary masks) are
        ``"labels"`` layers (viewed as uint8 0/1); the others are ``"image"`` layers
        with the operation's first colormap and the contrast limits the batch
        measured on its first frame. ``kwargs["name"]`` is ``"<filter> (<store>)"``;
        ``kwargs["metadata"]`` holds ``store``, ``filter``, ``title``, ``params``,
        ``file_names``, ``source_paths`` and the ``report``.

    Raises
    ------
    ValueError
        ``path`` is not a napari-xray batch store (or names an array it lacks).
    """
    import dask.array as da
    import zarr

    located = _locate(path)
    if located is None:
        raise ValueError(
            f"{path} is not a napari-xray batch store; make one with 'napari-xray batch "
            "INPUT … --out STORE.zarr'"
        )
    root, only = located
    group = zarr.open_group(str(root), mode="r", zarr_format=3)
    attrs = dict(group.attrs)
    config = attrs["napari_xray"]
    status_attrs = dict(group[STATUS_ARRAY].attrs) if STATUS_ARRAY in group else {}
    store_name = root.name[: -len(".zarr")] if root.name.lower().endswith(".zarr") else root.name
    shared = {
        "store": str(root),
        "file_names": list(status_attrs.get("file_names", [])),
        "source_paths": list(status_attrs.get("source_paths", [])),
        "report": attrs.get("report", {}),
    }
    layers: list[LayerDataTuple] = []
    for spec in config["filters"]:
        key = spec["key"]
        if only is not None and key != only:
            continue
        array = group[key]
        info = dict(array.attrs).get("napari_xray", {})
        data = da.from_zarr(array)
        metadata = {
            **shared,
            "filter": key,
            "title": info.get("title", key),
            "params": dict(spec["params"]),
        }
        kwargs: dict[str, Any] = {"name": f"{key} ({store_name})", "metadata": metadata}
        if np.dtype(array.dtype) == bool:
            layers.append((data.astype(np.uint8), kwargs, "labels"))
            continue
        operation = OPERATIONS.get(key)
        kwargs["colormap"] = info.get("colormap") or (
            operation.colormaps[0] if operation is not None else "gray"
        )
        limits = info.get("contrast_limits")
        if limits is not None:
            kwargs["contrast_limits"] = [float(limits[0]), float(limits[1])]
        kwargs["rgb"] = False
        layers.append((data, kwargs, "image"))
    if not layers:
        raise ValueError(f"{path}: the store has no result array {only!r}")
    return layers
