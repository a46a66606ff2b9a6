"""The ``napari-xray batch`` results store: its schema, how to recognise it, lazy opening.

A store is a Zarr v3 group ``STORE.zarr`` whose attributes hold
``napari_xray.format == "napari-xray-batch"``, one ``(N, H, W)`` result array per
operation (``log``, ``gradient``, …), and the ``status`` array (one code per
frame; the input file list lives in its attributes). :func:`is_xray_store` reads
only ``zarr.json`` files; :func:`open_store` wraps every result array in
a Dask array, so only the chunks asked for are ever read; a chunk that fails its
checksum raises :class:`~napari_xray.errors.XrayReadError` naming the frame.
Frames the batch has not done (or could not read) are zeros, Zarr's fill value.
Nothing here creates a Dask client.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_xray.errors import XrayReadError

__all__ = [
    "STATUS_ARRAY",
    "STATUS_CODES",
    "STATUS_DONE",
    "STATUS_FAILED",
    "STATUS_TODO",
    "STORE_FORMAT",
    "STORE_VERSION",
    "BatchStore",
    "StoredResult",
    "is_xray_store",
    "open_store",
]

#: Value of ``status[i]`` for a frame not processed yet (also Zarr's fill value).
STATUS_TODO = 0
#: Value of ``status[i]`` once every result of frame ``i`` is written.
STATUS_DONE = 1
#: Value of ``status[i]`` for a frame that could not be read (listed in the report).
STATUS_FAILED = 2
STATUS_CODES = {STATUS_TODO: "to do", STATUS_DONE: "done", STATUS_FAILED: "failed"}

#: ``attrs["napari_xray"]["format"]`` of a batch store.
STORE_FORMAT = "napari-xray-batch"
#: 2: a CRC-32C checksum on every chunk and the ``fingerprint`` array; 1 (no
#: checksums) is still read.
STORE_VERSION = 2
STATUS_ARRAY = "status"


@dataclass(frozen=True)
class StoredResult:
    """One result array of a store, opened lazily, with its display hints."""

    key: str  # the operation key, also the array's name
    data: Any  # dask.array.Array, (N, H, W), one chunk per stored chunk
    title: str
    params: dict[str, Any]
    colormap: str  # the batch's choice, else the operation's first colormap
    contrast_limits: tuple[float, float] | None  # measured by the batch on its first frame


@dataclass(frozen=True)
class BatchStore:
    """An opened store: where it is, what it was made from, and its results."""

    root: Path
    name: str  # the store's folder name without ``.zarr``
    file_names: list[str]
    source_paths: list[str]
    report: dict[str, Any]
    results: list[StoredResult]
    #: The inputs' ChestX-ray8 entry rows (``entry_file``, ``malformed_rows``, ``rows``), if any.
    chestxray8: dict[str, Any] | None = None


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
    if meta and meta.get("node_type") == "array" and _is_store_group(_read_metadata(folder.parent)):
        info = (meta.get("attributes") or {}).get("napari_xray")
        if isinstance(info, dict) and "filter" in info:
            return folder.parent, folder.name
    return None


def is_xray_store(path: str | os.PathLike) -> bool:
    """Is ``path`` a napari-xray batch store, or one result array inside one?

    Cheap: reads one or two small ``zarr.json`` files. Never raises.

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


class _CheckedChunks:
    """A store array for ``dask.array.from_array`` whose read errors name the frames."""

    def __init__(self, array, root: Path, key: str, file_names: list[str]):
        self.array, self.root, self.key, self.file_names = array, root, key, file_names
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, selection):
        try:
            return self.array[selection]
        except Exception as exc:  # the checksum codec, a truncated chunk file, …
            first = selection[0] if isinstance(selection, tuple) else selection
            start, stop, _ = first.indices(self.shape[0]) if isinstance(first, slice) else (
                int(first), int(first) + 1, 1)
            names = self.file_names[start:stop]
            frames = f"frame {start}" if stop - start == 1 else f"frames {start}–{stop - 1}"
            raise XrayReadError(
                f"{self.root.name}: the {self.key} result of {frames}"
                f"{' (' + ', '.join(names) + ')' if names else ''} is damaged "
                f"({type(exc).__name__}: {exc}); rerun the batch that made it with --verify "
                "to compute it again",
                self.root,
            ) from None


def open_store(path: str | os.PathLike) -> BatchStore:
    """Open a batch store lazily: every result array (or the one named) as a Dask array.

    Parameters
    ----------
    path
        ``STORE.zarr`` or ``STORE.zarr/<filter>``.

    Returns
    -------
    BatchStore
        Its ``results`` in the order the batch ran them, each holding a Dask array
        of the store array, one chunk per stored chunk (nothing but metadata is
        read here; computing a damaged chunk raises ``XrayReadError``),
        the operation's title and parameters, and its colormap and contrast limits.

    Raises
    ------
    XrayReadError
        ``path`` is not a napari-xray batch store (or names an array it lacks).
    """
    import dask.array as da
    import numpy as np
    import zarr
    from dask.base import tokenize

    from napari_xray.engine.operations import OPERATIONS

    located = _locate(path)
    if located is None:
        raise XrayReadError(
            f"{path} is not a napari-xray batch store; make one with 'napari-xray batch "
            "INPUT … --out STORE.zarr'",
            path,
        )
    root, only = located
    group = zarr.open_group(str(root), mode="r", zarr_format=3)
    attrs = dict(group.attrs)
    status_attrs = dict(group[STATUS_ARRAY].attrs) if STATUS_ARRAY in group else {}
    results = []
    for spec in attrs["napari_xray"]["filters"]:
        key = spec["key"]
        if only is not None and key != only:
            continue
        array = group[key]
        info = dict(array.attrs).get("napari_xray", {})
        operation = OPERATIONS.get(key)
        limits = info.get("contrast_limits")
        results.append(
            StoredResult(
                key=key,
                data=da.from_array(
                    _CheckedChunks(array, root, key, list(status_attrs.get("file_names", []))),
                    chunks=array.chunks,
                    name=f"napari-xray-{key}-" + tokenize(str(root), key, array.shape),
                    meta=np.empty((0,) * array.ndim, dtype=array.dtype),
                ),
                title=info.get("title", key),
                params=dict(spec["params"]),
                colormap=info.get("colormap")
                or (operation.colormaps[0] if operation is not None else "gray"),
                contrast_limits=None if limits is None else (float(limits[0]), float(limits[1])),
            )
        )
    if not results:
        raise XrayReadError(f"{path}: the store has no result array {only!r}", path)
    name = root.name[: -len(".zarr")] if root.name.lower().endswith(".zarr") else root.name
    return BatchStore(
        root=root,
        name=name,
        file_names=list(status_attrs.get("file_names", [])),
        source_paths=list(status_attrs.get("source_paths", [])),
        report=attrs.get("report", {}),
        results=results,
        chestxray8=status_attrs.get("chestxray8"),
    )
