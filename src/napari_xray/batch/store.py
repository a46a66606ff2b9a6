"""The batch's side of a results store: the plan, creating or reopening a store, the report.

The layout is described in :mod:`napari_xray.batch`; the schema constants (status
codes, format name) live in :mod:`napari_xray.io.store`, which reads stores back.
Every array is written with a CRC-32C checksum per chunk.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_xray.batch.folders import (
    building_path,
    delete_local_store,
    looks_like_store_remnant,
)
from napari_xray.batch.inputs import (
    COMPRESSIONS,
    FLOAT_DTYPES,
    FilterSpec,
    common_frame,
    probe_frame,
)
from napari_xray.batch.integrity import FINGERPRINT_ARRAY, FINGERPRINT_FIELDS, read_blocks
from napari_xray.batch.report import empty_report, timestamp
from napari_xray.engine.operations import OPERATIONS, get_operation
from napari_xray.errors import BatchError
from napari_xray.io.store import (
    STATUS_ARRAY,
    STATUS_CODES,
    STATUS_DONE,
    STATUS_TODO,
    STORE_FORMAT,
    STORE_VERSION,
)

__all__ = [
    "BatchPlan",
    "is_local_store",
    "open_or_create_store",
    "read_config",
    "read_status",
    "read_status_blocks",
    "store_location",
    "todo_frames",
]


@dataclass(frozen=True)
class BatchPlan:
    """Everything a worker needs besides its frame indices and paths (small, picklable).

    ``store`` is an absolute path or URL; ``store_id`` changes whenever the store
    is re-created, so workers never reuse array handles of a deleted store.
    """

    store: str
    store_id: str
    filters: tuple[FilterSpec, ...]
    frame_shape: tuple[int, int]
    input_dtype: str
    chunk_frames: int
    n_frames: int
    task_frames: int = 1

    def chunk_bounds(self, chunk: int) -> tuple[int, int]:
        """``(start, stop)`` frame indices of zarr chunk number ``chunk``."""
        start = chunk * self.chunk_frames
        return start, min(start + self.chunk_frames, self.n_frames)

    def block_bounds(self, block: int) -> tuple[int, int]:
        """``(start, stop)`` of task block ``block`` (one chunk of the status array)."""
        start = block * self.task_frames
        return start, min(start + self.task_frames, self.n_frames)


#: Names of the arrays a store may hold.
_ARRAY_NAMES = frozenset({*OPERATIONS, STATUS_ARRAY, FINGERPRINT_ARRAY})


def is_local_store(store: str) -> bool:
    """Is ``store`` a local path (not an fsspec URL such as ``s3://…``)?"""
    return "://" not in store


def read_config(group) -> dict[str, Any] | None:
    """The ``napari_xray`` attribute of a batch store's group, or ``None`` if it is not one."""
    info = dict(group.attrs).get("napari_xray")
    if isinstance(info, dict) and info.get("format") == STORE_FORMAT:
        return info
    return None


def read_status(group) -> np.ndarray:
    """The per-frame status array (0 to do, 1 done, 2 failed) of an open store."""
    return np.asarray(group[STATUS_ARRAY][:], dtype=np.uint8)


def read_status_blocks(group, plan: BatchPlan) -> tuple[np.ndarray, list[int]]:
    """The status array read chunk by chunk: a damaged chunk reads as "to do".

    Returns
    -------
    (numpy.ndarray, list of int)
        The codes, and the first frame of every damaged status chunk.
    """
    return read_blocks(group[STATUS_ARRAY], plan.n_frames, plan.task_frames, STATUS_TODO)


def todo_frames(plan: BatchPlan, status: np.ndarray) -> np.ndarray:
    """Frame indices of every chunk holding a frame that is not done (whole chunks)."""
    not_done = status != STATUS_DONE
    chunks = np.unique(np.flatnonzero(not_done) // plan.chunk_frames)
    if chunks.size == 0:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([np.arange(*plan.chunk_bounds(int(c))) for c in chunks])


def open_or_create_store(
    out: str | os.PathLike,
    files: Sequence[Path],
    keys: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
    *,
    float_dtype: str = "float32",
    compression: str = "none",
    chunk_frames: int = 1,
    frames_per_task: int | None = None,
    shape: tuple[int, int] | None = None,
    overwrite: bool = False,
    chestxray8: dict[str, Any] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[BatchPlan, Any]:
    """Create the store for ``files`` × ``keys``, or reopen a compatible one to resume.

    ``chestxray8`` (``entry_file``, ``malformed_rows`` and ``rows``: each file's
    entry row or None) is kept in a new store's status attributes, so that its
    lazy layers show the frames' findings.

    A new store takes the frame size and pixel type most inputs' headers have
    (of ``shape``, if given; see :func:`~napari_xray.batch.inputs.common_frame`),
    runs every operation once on the first input of that kind to learn the
    output dtypes and contrast limits (nothing per filter is hard-coded), and
    creates the arrays described in :mod:`napari_xray.batch`. Inputs of another
    size or type are named in a notice; the run reports them as failures.

    An existing store is reused only if it was made from the same files, filters,
    parameters, dtype and frame size; ``compression``, ``chunk_frames`` and
    ``frames_per_task`` of the existing store are kept.

    ``frames_per_task`` (rounded up to whole chunks) is the task block: one Dask
    task and one chunk of the ``status`` array. ``None`` picks ``N / 32`` frames,
    at most 64 (ChestX-ray8: 1,752 tasks of 64 frames; a status array of 1,752
    small files that a resuming run reads in well under a second).

    Returns
    -------
    (BatchPlan, zarr.Group)

    Raises
    ------
    BatchError
        ``out`` exists but is not a napari-xray store, is damaged, was made by an
        older napari-xray or with other inputs/filters/parameters; no input is
        readable; bad option values.
    """
    if float_dtype not in FLOAT_DTYPES:
        raise BatchError(f"--dtype must be one of {', '.join(FLOAT_DTYPES)}, got {float_dtype!r}")
    if int(chunk_frames) < 1:
        raise BatchError(f"--chunk-frames must be at least 1, got {chunk_frames}")
    if frames_per_task is not None and int(frames_per_task) < 1:
        raise BatchError(f"--frames-per-task must be at least 1, got {frames_per_task}")
    if compression not in COMPRESSIONS:
        raise BatchError(
            f"--compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}"
        )
    store = store_location(out)
    options = {"float_dtype": float_dtype, "compression": compression,
               "chunk_frames": chunk_frames, "frames_per_task": frames_per_task, "shape": shape}
    exists = _store_exists(store)
    if exists and overwrite:
        _delete_store(store, log)
        exists = False
    if exists:
        return _reopen_store(out, store, files, keys, params, log=log, **options)
    return _create_store(out, store, files, keys, params, log=log, chestxray8=chestxray8,
                         **options)


def _reopen_store(out, store, files, keys, params, *, float_dtype, compression, chunk_frames,
                  frames_per_task, shape, log) -> tuple[BatchPlan, Any]:
    """Open an existing store to resume it; refuse it if another batch made it."""
    import zarr

    try:
        group = zarr.open_group(store, mode="r+", zarr_format=3)
    except Exception as exc:  # zarr raises several kinds for a foreign folder
        if is_local_store(store) and looks_like_store_remnant(store, _ARRAY_NAMES):
            raise BatchError(
                f"{out} is what is left of a napari-xray batch store (its zarr.json is "
                "missing); rerun with --overwrite to make it again"
            ) from None
        raise BatchError(
            f"{out} exists and is not a Zarr v3 store ({type(exc).__name__}: {exc}); "
            "choose another --out"
        ) from None
    config = read_config(group)
    if config is None:
        raise BatchError(
            f"{out} exists but is not a napari-xray batch store; choose another --out"
        )
    if int(config.get("version", 1)) < STORE_VERSION:
        raise BatchError(
            f"{out} was made by an older napari-xray (store version {config.get('version', 1)}: "
            "no chunk checksums or input fingerprints); rerun with --overwrite to make it "
            "again, or choose another --out"
        )
    wanted_arrays = [f["key"] for f in config["filters"]] + [STATUS_ARRAY, FINGERPRINT_ARRAY]
    lacking = [name for name in wanted_arrays if name not in group]
    if lacking:
        raise BatchError(
            f"{out} is damaged (its array {lacking[0]!r} is missing); rerun with --overwrite "
            "to make it again"
        )
    source_paths = [str(p) for p in files]
    recorded_filters = [{"key": f["key"], "params": f["params"]} for f in config["filters"]]
    requested = {
        "filters": [{"key": k, "params": _jsonable(dict(params[k]))} for k in keys],
        "float_dtype": float_dtype,
        "frame_shape": list(shape) if shape else config["frame_shape"],
        "input_dtype": config["input_dtype"],
        "n_frames": len(files),
    }
    recorded = dict(config, filters=recorded_filters)
    difference = _describe_difference(recorded, requested)
    if difference is None:
        recorded_paths = group[STATUS_ARRAY].attrs.get("source_paths", [])
        if recorded_paths != source_paths:
            first = next(
                (i for i, (a, b) in enumerate(zip(recorded_paths, source_paths, strict=False))
                 if a != b),
                min(len(recorded_paths), len(source_paths)),
            )
            difference = f"input files: they differ from frame {first} on"
    if difference is not None:
        raise BatchError(
            f"{out} was made by another batch ({difference}); rerun with the same "
            "inputs and options to resume, pass --overwrite to start it again, or "
            "choose another --out"
        )
    kept = [
        f"{name} {config[key]}"
        for name, key, given in (
            ("--compression", "compression", compression),
            ("--chunk-frames", "chunk_frames", chunk_frames),
            ("--frames-per-task", "task_frames", frames_per_task),
        )
        if given is not None and given != config[key] and not (
            key == "chunk_frames" and given == 1
        ) and not (key == "compression" and given == "none")
    ]
    if kept:
        log(f"{out} keeps the storage options it was made with: {', '.join(kept)}")
    plan = BatchPlan(
        store=store,
        store_id=config["store_id"],
        filters=tuple(FilterSpec(f["key"], f["params"], f["dtype"]) for f in config["filters"]),
        frame_shape=tuple(config["frame_shape"]),
        input_dtype=config["input_dtype"],
        chunk_frames=int(config["chunk_frames"]),
        n_frames=int(config["n_frames"]),
        task_frames=int(config["task_frames"]),
    )
    return plan, group


def _describe_difference(recorded: dict[str, Any], requested: dict[str, Any]) -> str | None:
    for name in ("filters", "float_dtype", "frame_shape", "input_dtype", "n_frames"):
        if recorded.get(name) != requested.get(name):
            return f"{name}: the store has {recorded.get(name)!r}, this run asks for " \
                   f"{requested.get(name)!r}"
    return None


#: What a float16 store says about its floating-point results (array attribute ``lossy``).
FLOAT16_LOSS = (
    "float16: the float32 results rounded to 11 significant bits, each value within "
    "2**-11 (4.9e-4) of itself; frames whose results reach 65,520 failed"
)


def _create_store(out, store, files, keys, params, *, float_dtype, compression, chunk_frames,
                  frames_per_task, shape, log, chestxray8=None) -> tuple[BatchPlan, Any]:
    """Make a new store: learn dtypes and contrast limits on one frame, create the arrays."""
    import zarr
    from zarr.codecs import Crc32cCodec

    common = common_frame(files, shape)
    if common is None and shape is None:
        raise BatchError(
            f"none of the {len(files)} inputs has a readable PNG or DICOM header; check them "
            "with 'napari-xray view FILE'"
        )
    probe_index, frame = probe_frame(
        files, shape or common.shape, None if common is None else common.dtype
    )
    frame_shape = tuple(int(s) for s in (shape or frame.shape))
    if common is not None and common.odd:
        names = ", ".join(f"{name} ({what})" for name, what in common.odd[:10])
        more = f" and {len(common.odd) - 10} more" if len(common.odd) > 10 else ""
        log(
            f"frames are {frame_shape[0]}×{frame_shape[1]} {frame.dtype} "
            f"({'--shape; ' if shape else ''}{common.count} of {common.probed} inputs"
            f"{' sampled' if common.probed < len(files) else ''}); these differ and will "
            f"fail: {names}{more}"
        )
    specs, hints = [], {}
    for key in keys:
        result = get_operation(key)(frame, **params[key])
        dtype = np.dtype(float_dtype) if result.dtype.kind == "f" else result.dtype
        specs.append(FilterSpec(key, _jsonable(dict(params[key])), dtype.name))
        if dtype.kind != "b":
            lo, hi = float(np.min(result)), float(np.max(result))
            hints[key] = [lo, hi if hi > lo else lo + 1.0]
    store_id = uuid.uuid4().hex
    n = len(files)
    chunk_frames = min(int(chunk_frames), n)
    wanted = frames_per_task if frames_per_task is not None else min(64, max(1, n // 32))
    task_frames = chunk_frames * max(1, math.ceil(int(wanted) / chunk_frames))
    config = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "store_id": store_id,
        "created": timestamp(),
        "napari_xray_version": _version(),
        "n_frames": len(files),
        "frame_shape": list(frame_shape),
        "input_dtype": frame.dtype.name,
        "chunk_frames": chunk_frames,
        "task_frames": task_frames,
        "float_dtype": float_dtype,
        "compression": compression,
        "filters": [{"key": s.key, "params": s.params, "dtype": s.dtype} for s in specs],
        "status_array": STATUS_ARRAY,
        "status_codes": {str(k): v for k, v in STATUS_CODES.items()},
        "probe_file": files[probe_index].name,
    }
    # A local store is built beside its final path and renamed into place when
    # complete, so an interrupted creation never leaves a store without its config.
    building = building_path(store, store_id) if is_local_store(store) else store
    try:
        group = zarr.open_group(building, mode="w-", zarr_format=3)
        for spec in specs:
            op = get_operation(spec.key)
            array = group.create_array(
                spec.key,
                shape=(n, *frame_shape),
                chunks=(chunk_frames, *frame_shape),
                dtype=spec.dtype,
                fill_value=0,
                compressors=_compressors(compression, np.dtype(spec.dtype)),
                dimension_names=("frame", "y", "x"),
            )
            array.attrs["napari_xray"] = {
                "filter": spec.key,
                "title": op.title,
                "description": op.description,
                "params": spec.params,
                "colormap": op.colormaps[0],
                "contrast_limits": hints.get(spec.key),
                "file_names": f"attributes of ../{STATUS_ARRAY}",
            }
            if spec.dtype == "float16":
                array.attrs["napari_xray"] = {
                    **array.attrs["napari_xray"], "lossy": FLOAT16_LOSS,
                }
        status = group.create_array(
            STATUS_ARRAY,
            shape=(n,),
            chunks=(task_frames,),
            dtype="uint8",
            fill_value=STATUS_TODO,
            compressors=[Crc32cCodec()],
            dimension_names=("frame",),
        )
        fingerprints = group.create_array(
            FINGERPRINT_ARRAY,
            shape=(n, len(FINGERPRINT_FIELDS)),
            chunks=(task_frames, len(FINGERPRINT_FIELDS)),
            dtype="uint64",
            fill_value=0,
            compressors=[Crc32cCodec()],
            dimension_names=("frame", "field"),
        )
        fingerprints.attrs["fields"] = list(FINGERPRINT_FIELDS)
        status.attrs.update(
            {
                "codes": config["status_codes"],
                "file_names": [p.name for p in files],
                "source_paths": [str(p) for p in files],
            }
        )
        if chestxray8 is not None:
            status.attrs["chestxray8"] = _jsonable(chestxray8)
        group.attrs.update({"napari_xray": config, "report": empty_report(n)})
    except BaseException:
        if building != store:
            shutil.rmtree(building, ignore_errors=True)
        raise
    if building != store:
        os.rename(building, store)  # also replaces an empty folder at ``store``
        group = zarr.open_group(store, mode="r+", zarr_format=3)
    log(
        f"created {out}: {n} frames of {frame_shape[0]}×{frame_shape[1]} {frame.dtype}, "
        f"arrays {', '.join(keys)} ({float_dtype} results"
        f"{' (lossy: 11 significant bits)' if float_dtype == 'float16' else ''}, "
        f"{compression} compression)"
    )
    plan = BatchPlan(
        store=store,
        store_id=store_id,
        filters=tuple(specs),
        frame_shape=frame_shape,
        input_dtype=frame.dtype.name,
        chunk_frames=chunk_frames,
        n_frames=n,
        task_frames=task_frames,
    )
    return plan, group


def _compressors(name: str, dtype: np.dtype):
    """The codec list for a result array: ``name`` for floats; masks are always compressed.

    Boolean and integer masks are mostly zeros (Canny: 1 MB → ~20 kB with LZ4), so
    they get LZ4 even with ``none``; float results of edge filters barely compress
    (~10 %), so their codec is the user's choice. A CRC-32C checksum comes last.
    """
    from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

    if name not in COMPRESSIONS:
        raise BatchError(f"--compression must be one of {', '.join(COMPRESSIONS)}, got {name!r}")
    if name == "none" and dtype.kind == "f":
        return [Crc32cCodec()]
    if name == "zstd":
        return [ZstdCodec(level=1), Crc32cCodec()]
    shuffle = "shuffle" if dtype.itemsize > 1 else "noshuffle"
    return [BloscCodec(cname="lz4", clevel=5, shuffle=shuffle), Crc32cCodec()]


def store_location(out: str | os.PathLike) -> str:
    """``out`` as the batch records it: an absolute local path, or the URL as given."""
    text = os.fspath(out)
    return text if not is_local_store(text) else os.path.abspath(os.path.expanduser(text))


def _jsonable(value: Any) -> Any:
    """The value as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(value, default=lambda o: o.item()))


def _version() -> str:
    from napari_xray import __version__

    return __version__


def _store_exists(store: str) -> bool:
    """Is there something at ``store``? An empty local folder counts as nothing."""
    if is_local_store(store):
        return os.path.exists(store) and not (os.path.isdir(store) and not os.listdir(store))
    import zarr

    try:
        zarr.open_group(store, mode="r")
    except Exception:
        return False
    return True


def _delete_store(store: str, log: Callable[[str], None]) -> None:
    """Delete a napari-xray store, or what a killed deletion left of one; refuse anything else."""
    import zarr

    try:
        config = read_config(zarr.open_group(store, mode="r", zarr_format=3))
    except Exception:
        config = None
    if config is None:
        if is_local_store(store) and looks_like_store_remnant(store, _ARRAY_NAMES):
            log(f"--overwrite: {store} is what is left of a batch store; deleting it")
            delete_local_store(store)
            return
        raise BatchError(
            f"--overwrite: {store} is not a napari-xray batch store; refusing to delete it"
        )
    if is_local_store(store):
        delete_local_store(store)
    else:
        zarr.open_group(store, mode="w", zarr_format=3)
