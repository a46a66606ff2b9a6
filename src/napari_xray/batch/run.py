"""Dataset-scale batch filtering on Dask into a resumable Zarr v3 store.

``napari-xray batch INPUT … --out STORE.zarr`` reads every input frame with
:func:`napari_xray.io.read_xray`, runs the selected operations of
:data:`napari_xray.engine.operations.OPERATIONS` on it (frame by frame, never across
frames) and writes one ``(N, H, W)`` array per operation. Nothing here is
written per filter: the arrays, their dtypes, parameters and display hints are
all generated from the operation description.

Store layout (Zarr v3, one group)
---------------------------------
``STORE.zarr/``
    Group attributes ``napari_xray`` (format, version, frame shape, input dtype,
    the filters with their resolved parameters and output dtypes, chunking,
    compression) and ``report`` (failures with reasons, counts, the last run).
``STORE.zarr/<filter>``
    One array per operation key (``log``, ``gradient``, …), shape ``(N, H, W)``,
    chunks of ``chunk_frames`` whole frames (default 1). float32 results (or
    float16 with ``--dtype float16``); bool results (Canny, binary mask) as bool;
    the value mask in the input dtype. Attributes ``napari_xray``: key, title,
    parameters, colormap and contrast limits measured on the first frame.
``STORE.zarr/status``
    uint8 ``(N,)``: 0 = to do, 1 = done, 2 = failed (skipped; listed in the
    report). One status chunk per task block (``task_frames`` frames, default N/32
    and at most 64), written only by the task of that block, each time *after* a
    chunk of results was stored — a crash can never mark undone work as done.
    Attributes: ``file_names`` and ``source_paths`` (absolute), one per frame.

Resuming
--------
Rerunning the same command processes only the chunks whose status is not
"done" (failed frames are retried; the report is rebuilt). Zarr's local store
writes every chunk atomically (temporary file + rename), so a killed worker or
Ctrl-C leaves either a complete chunk or none. A store made with other inputs,
filters, parameters or dtype is refused with a message, never silently mixed.

Execution
---------
The graph is ``dask.array.map_blocks`` over a 1-D array of the frame indices to
do, one block per task block (whole chunks of frames). Each task reads its files,
filters them frame by frame, writes its chunks straight into the store (which
must be on a filesystem or object store all workers share) and returns only
small per-frame statuses, never pixels.
Without a scheduler address a :class:`distributed.LocalCluster` of single-threaded
worker processes on 127.0.0.1 is started and always closed. No global Dask client
is ever installed.

Test hook: the environment variable ``NAPARI_XRAY_BATCH_TEST_DELAY`` (seconds)
makes the worker sleep that long after filtering each frame, so tests can kill a
run half-way. It is read in the workers; leave it unset in real runs.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from napari_xray.errors import BatchError
from napari_xray.io.store import (
    STATUS_ARRAY,
    STATUS_CODES,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_TODO,
    STORE_FORMAT,
    STORE_VERSION,
)

from napari_xray.io.read import XrayReadError, list_xray_files, natural_sort_key, read_xray
from napari_xray.engine.operations import OPERATIONS, get_operation

__all__ = [
    "COMPRESSIONS",
    "STATUS_DONE",
    "STATUS_FAILED",
    "STATUS_TODO",
    "STORE_FORMAT",
    "TEST_DELAY_ENV",
    "WORKER_ENVIRONMENT",
    "BatchError",
    "BatchPlan",
    "BatchSummary",
    "FilterSpec",
    "FrameError",
    "FrameResult",
    "add_parser",
    "build_graph",
    "dask_client",
    "discover_inputs",
    "filter_frame",
    "open_or_create_store",
    "parse_filters",
    "parse_params",
    "parse_shape",
    "probe_frame",
    "process_frames",
    "read_config",
    "read_frame",
    "read_status",
    "run_batch",
    "run_command",
]

#: Environment variable: seconds each worker sleeps per frame (a test hook).
TEST_DELAY_ENV = "NAPARI_XRAY_BATCH_TEST_DELAY"

#: ``--compression`` choices: codec used for the result arrays.
COMPRESSIONS = ("none", "lz4", "zstd")
FLOAT_DTYPES = ("float32", "float16")
# How long to wait for a worker to join an existing cluster.
WORKER_WAIT_SECONDS = 60.0
_GLOB_CHARS = frozenset("*?[")
#: Environment of local worker processes (dask config keys). Dask sets
#: MALLOC_TRIM_THRESHOLD_=65536 for its workers, which also switches off glibc's
#: adaptive mmap threshold: every 4 MB temporary of a filter is then a fresh mmap
#: with 1024 page faults, and the filters run ~40 % slower (33 → 47 ms per frame
#: measured here). Large blocks from the heap, trimmed above 256 MB, restore the
#: speed. Start the workers of a real cluster with the same two variables.
WORKER_ENVIRONMENT = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 256 * 2**20,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 64 * 2**20,
}
_LAST_STATE = {
    "running": "it was killed, or is still running elsewhere",
    "interrupted": "it was interrupted",
    "stopped": "it stopped on an error",
}


# --------------------------------------------------------------------------------------
# Inputs, filters, parameters
# --------------------------------------------------------------------------------------


def discover_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files, folders and glob patterns into the list of frames to process.

    * A folder gives its PNG/DICOM files exactly as the reader lists them
      (:func:`napari_xray.io.read.list_xray_files`: natural order, hidden files,
      subfolders and other files such as ``Data_Entry_2017.csv`` skipped).
    * A glob (``*``, ``?``, ``[``; ``**`` recurses) gives the matching files that
      the reader would list in their folder, in natural order, and the images of
      matching folders.
    * An existing file is taken as given (if it is not a readable image it is
      reported as a failure later, not skipped silently).

    Inputs keep the order given; a path reached twice is kept once.

    Returns
    -------
    list of pathlib.Path
        Absolute paths, never empty.

    Raises
    ------
    BatchError
        An input does not exist, a glob matches nothing, or no image was found.
    """
    found: list[Path] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            found.append(Path(key))

    listing_cache: dict[Path, set[str]] = {}

    def listed(folder: Path) -> set[str]:
        if folder not in listing_cache:
            try:
                listing_cache[folder] = {p.name for p in list_xray_files(folder)}
            except XrayReadError:
                listing_cache[folder] = set()
        return listing_cache[folder]

    for item in inputs:
        text = os.fspath(item)
        path = Path(text).expanduser()
        if path.is_dir():
            try:
                files = list_xray_files(path)
            except XrayReadError as exc:
                raise BatchError(str(exc)) from exc
            if not files:
                raise BatchError(
                    f"folder {path} holds no PNG or DICOM files; pass a folder of images, "
                    "image files or a glob such as 'images_*/*.png'"
                )
            for f in files:
                add(f)
        elif path.is_file():
            add(path)
        elif _GLOB_CHARS & set(text):
            matches = sorted(
                glob.glob(os.path.expanduser(text), recursive=True),
                key=lambda m: natural_sort_key(os.path.basename(m)),
            )
            images: list[Path] = []
            for match in map(Path, matches):
                if match.is_dir():
                    images.extend(list_xray_files(match))
                elif match.name in listed(match.parent):
                    images.append(match)
            if not images:
                raise BatchError(
                    f"the pattern {text!r} matches no PNG or DICOM file; check the pattern "
                    "(quote it so the shell does not expand it)"
                )
            for f in images:
                add(f)
        else:
            raise BatchError(f"{text} does not exist; check the path")
    if not found:
        raise BatchError("no input images; pass files, folders or glob patterns")
    return found


def parse_filters(text: str | Sequence[str] | None) -> list[str]:
    """The operation keys selected by ``--filters`` (``"log,sobel"`` or a list).

    ``None`` or an empty selection means every operation of
    :data:`~napari_xray.engine.operations.OPERATIONS`, in its order.

    Returns
    -------
    list of str
        Valid, distinct keys in the order given.

    Raises
    ------
    BatchError
        An unknown key (the message lists the valid ones) or a repeated key.
    """
    if text is None:
        return list(OPERATIONS)
    items = text.split(",") if isinstance(text, str) else list(text)
    keys = [k.strip().lower() for k in items if k.strip()]
    if not keys:
        return list(OPERATIONS)
    for key in keys:
        try:
            get_operation(key)
        except KeyError as exc:
            raise BatchError(exc.args[0]) from None
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise BatchError(f"--filters names {', '.join(repeated)} more than once")
    return keys


def parse_params(
    items: Iterable[str] | Mapping[str, Mapping[str, Any]] | None, keys: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Resolve every selected operation's parameters, with ``--param`` overrides.

    ``items`` holds ``"KEY.NAME=VALUE"`` strings (``"log.sigma=2"``,
    ``"mask.mode=binary"``) or a mapping ``{"log": {"sigma": 2}}``. Values are
    checked and converted by :meth:`Operation.resolve`.

    Returns
    -------
    dict
        ``{key: {name: value}}`` for every key in ``keys``: the defaults of the
        description with the overrides applied.

    Raises
    ------
    BatchError
        Malformed text, an operation not among ``keys``, an unknown parameter
        name or a value out of range.
    """
    overrides: dict[str, dict[str, Any]] = {k: {} for k in keys}
    if isinstance(items, Mapping):
        pairs = [(k, n, v) for k, values in items.items() for n, v in values.items()]
    else:
        pairs = []
        for item in items or ():
            target, sep, value = item.partition("=")
            key, dot, name = target.strip().partition(".")
            if not sep or not dot or not key or not name:
                raise BatchError(
                    f"--param {item!r} is not KEY.NAME=VALUE (for example log.sigma=2)"
                )
            pairs.append((key.strip().lower(), name.strip(), value.strip()))
    for key, name, value in pairs:
        if key not in overrides:
            raise BatchError(
                f"--param {key}.{name}: {key!r} is not among the selected filters "
                f"({', '.join(keys)})"
            )
        overrides[key][name] = value
    resolved = {}
    for key in keys:
        try:
            resolved[key] = get_operation(key).resolve(overrides[key])
        except (KeyError, ValueError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise BatchError(f"--param for {key}: {message}") from None
    return resolved


def parse_shape(text: str | Sequence[int] | None) -> tuple[int, int] | None:
    """``"1024x1024"`` (rows×columns) or a pair → ``(1024, 1024)``; ``None`` stays ``None``.

    Raises
    ------
    BatchError
        Not two positive integers.
    """
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x") if isinstance(text, str) else list(text)
    try:
        shape = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise BatchError(f"--shape must be ROWSxCOLUMNS such as 1024x1024, got {text!r}")
    return shape  # type: ignore[return-value]


# --------------------------------------------------------------------------------------
# The plan shipped to the workers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterSpec:
    """One result array: operation ``key``, its resolved ``params`` and stored ``dtype``."""

    key: str
    params: Mapping[str, Any]
    dtype: str


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


class FrameResult(NamedTuple):
    """What a worker reports for one frame (a few bytes, never pixels)."""

    index: int
    status: int  # STATUS_DONE or STATUS_FAILED
    reason: str | None
    read_seconds: float
    filter_seconds: float
    write_seconds: float


class FrameError(Exception):
    """A frame that cannot be processed; its message is the report's reason."""


# --------------------------------------------------------------------------------------
# Worker side
# --------------------------------------------------------------------------------------


def read_frame(path: str | os.PathLike, frame_shape: Sequence[int], input_dtype) -> np.ndarray:
    """Read one frame exactly as the reader does and check it fits the store.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` of ``input_dtype`` (colour PNGs converted to grayscale by
        :func:`napari_xray.io.read_xray`).

    Raises
    ------
    FrameError
        The file is unreadable/truncated/not an image (the reader's message), holds
        several frames, has another size ("wrong size") or another pixel type.
    """
    try:
        frame = read_xray(path)
    except XrayReadError as exc:
        raise FrameError(str(exc)) from None
    except (OSError, ValueError, TypeError, MemoryError) as exc:
        raise FrameError(f"{Path(path).name}: {type(exc).__name__}: {exc}") from None
    name = Path(path).name
    if frame.ndim != 2:
        raise FrameError(f"{name} holds {frame.shape[0]} frames; the batch takes single frames")
    if tuple(frame.shape) != tuple(frame_shape):
        raise FrameError(
            f"wrong size: {name} is {frame.shape[0]}×{frame.shape[1]} (rows×columns) but the "
            f"store holds {frame_shape[0]}×{frame_shape[1]} frames"
        )
    if frame.dtype != np.dtype(input_dtype):
        raise FrameError(
            f"wrong pixel type: {name} is {frame.dtype} but the store holds {input_dtype} "
            "frames (thresholds and mask values depend on it); convert it or batch it "
            "into another store"
        )
    return frame


def filter_frame(frame: np.ndarray, filters: Sequence[FilterSpec]) -> dict[str, np.ndarray]:
    """Run every operation of ``filters`` on one frame, cast to the stored dtypes.

    Returns
    -------
    dict
        ``{key: (H, W) array}``.

    Raises
    ------
    FrameError
        An operation rejected the frame (its message names the operation).
    """
    results = {}
    for spec in filters:
        try:
            result = OPERATIONS[spec.key](frame, **spec.params)
        except ValueError as exc:
            raise FrameError(f"{spec.key} failed: {exc}") from None
        results[spec.key] = np.asarray(result, dtype=spec.dtype)
    return results


@lru_cache(maxsize=8)
def _open_arrays(store: str, store_id: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The store's arrays opened for writing (cached per worker process and store id)."""
    import zarr

    # Writing chunks without first comparing them with the fill value saves ~1 ms per
    # 4 MB chunk; an all-zero chunk (a failed frame) is then stored like any other.
    return {
        key: zarr.open_array(_node_url(store, key), mode="r+").with_config(
            {"write_empty_chunks": True}
        )
        for key in keys
    }


def _node_url(store: str, key: str) -> str:
    return store.rstrip("/") + "/" + key


def _test_delay() -> None:
    delay = os.environ.get(TEST_DELAY_ENV)
    if delay:
        time.sleep(float(delay))


def process_frames(
    plan: BatchPlan, indices: Sequence[int], paths: Sequence[str]
) -> list[FrameResult]:
    """Read, filter and write the frames ``indices`` (whole chunks) into the store.

    For each zarr chunk touched, all of its frames are computed, every result
    array's chunk is written, and only then the chunk's ``status`` entries
    (done/failed). Unreadable frames are written as zeros and marked failed.

    Parameters
    ----------
    plan
        The store and filters (see :class:`BatchPlan`).
    indices, paths
        Frame numbers and their files; every chunk touched must be complete.

    Returns
    -------
    list of FrameResult
        One per frame, with the failure reason and worker-side timings.

    Raises
    ------
    ValueError
        ``indices`` does not cover whole chunks. Store errors (e.g. the store is
        not visible from this worker) propagate.
    """
    indices = [int(i) for i in indices]
    path_of = dict(zip(indices, (str(p) for p in paths), strict=True))
    keys = tuple(spec.key for spec in plan.filters)
    arrays = _open_arrays(plan.store, plan.store_id, (*keys, STATUS_ARRAY))
    results: list[FrameResult] = []
    for block in sorted({i // plan.task_frames for i in indices}):
        block_start, block_stop = plan.block_bounds(block)
        # This task is the only writer of the block's status chunk: it keeps the
        # codes of frames done earlier and rewrites the whole chunk after each of
        # its result chunks is stored.
        codes = np.asarray(arrays[STATUS_ARRAY][block_start:block_stop], dtype=np.uint8)
        chunks = sorted({i // plan.chunk_frames for i in indices if block_start <= i < block_stop})
        for chunk in chunks:
            start, stop = plan.chunk_bounds(chunk)
            missing = [i for i in range(start, stop) if i not in path_of]
            if missing:
                raise ValueError(
                    f"frames {missing} of chunk {chunk} were not given; pass whole chunks"
                )
            chunk_results = _process_chunk(plan, arrays, keys, start, stop, path_of)
            for result in chunk_results:
                codes[result.index - block_start] = result.status
            # Completion is recorded only after every result of the chunk is stored.
            arrays[STATUS_ARRAY][block_start:block_stop] = codes
            results.extend(chunk_results)
    return results


def _process_chunk(plan, arrays, keys, start, stop, path_of) -> list[FrameResult]:
    """Read, filter and store frames ``start:stop`` (one zarr chunk); no status written."""
    height, width = plan.frame_shape
    stacks: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    pending = []
    for index in range(start, stop):
        t0 = time.perf_counter()
        reason = None
        try:
            frame = read_frame(path_of[index], plan.frame_shape, plan.input_dtype)
            t1 = time.perf_counter()
            filtered = filter_frame(frame, plan.filters)
        except FrameError as exc:
            reason = str(exc)
            t1 = time.perf_counter()
            filtered = {
                spec.key: np.zeros((height, width), dtype=spec.dtype) for spec in plan.filters
            }
        t2 = time.perf_counter()
        for key in keys:
            stacks[key].append(filtered[key])
        _test_delay()
        pending.append((index, reason, t1 - t0, t2 - t1))
    t3 = time.perf_counter()
    blocks = {
        # One frame per chunk (the default) is written without a copy.
        key: frames[0][np.newaxis] if len(frames) == 1 else np.stack(frames)
        for key, frames in stacks.items()
    }
    if all(reason for _, reason, _, _ in pending):
        # Only zeros (failed frames): let zarr drop the chunks instead of storing them.
        arrays = {key: arrays[key].with_config({"write_empty_chunks": False}) for key in keys}
    _write_chunks(arrays, blocks, slice(start, stop))
    write_share = (time.perf_counter() - t3) / (stop - start)
    return [
        FrameResult(index, STATUS_FAILED if reason else STATUS_DONE, reason, read_s, filter_s,
                    write_share)
        for index, reason, read_s, filter_s in pending
    ]


_WRITE_POOL = None


def _write_chunks(arrays: Mapping[str, Any], blocks: Mapping[str, np.ndarray], where: slice):
    """Write one chunk of every result array, concurrently; returns when all are stored.

    The writes overlap in a few I/O threads: they mostly wait for the filesystem
    (a single writer gets well under the disk's bandwidth on Linux), so this
    shortens a frame's write time without adding compute. Any error is raised.
    """
    global _WRITE_POOL
    if _WRITE_POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _WRITE_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="napari-xray-write")

    def write(key: str) -> None:
        arrays[key][where] = blocks[key]

    for future in [_WRITE_POOL.submit(write, key) for key in blocks]:
        future.result()


_THREADS_LIMITED = False


def _limit_threads() -> None:
    """One compute thread per task: OpenCV's own pool oversubscribes the worker's core."""
    global _THREADS_LIMITED
    if not _THREADS_LIMITED:
        import cv2

        cv2.setNumThreads(1)
        _THREADS_LIMITED = True


def _run_block(indices: np.ndarray, paths: np.ndarray, plan: BatchPlan) -> np.ndarray:
    """``map_blocks`` adapter: a block of frame indices → object array of FrameResult."""
    _limit_threads()
    results = process_frames(plan, indices, paths)
    out = np.empty(len(results), dtype=object)
    for i, result in enumerate(results):
        out[i] = result
    return out


def _worker_check(store: str, probe_path: str, ignore_interrupt: bool = False) -> dict[str, Any]:
    """Run on each worker before the batch: can it import the package and see the files?

    With ``ignore_interrupt`` (local clusters, whose worker processes share the
    terminal's process group) the worker ignores SIGINT, so Ctrl-C reaches only
    the client, which then stops the cluster cleanly instead of every worker
    printing a traceback.
    """
    from napari_xray import __version__

    if ignore_interrupt:
        import signal

        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the worker process's main thread
            pass

    local = "://" not in store
    return {
        "version": __version__,
        "store_visible": (not local) or os.path.exists(os.path.join(store, "zarr.json")),
        "input_visible": os.path.exists(probe_path),
    }


# --------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------


def build_graph(plan: BatchPlan, todo: Sequence[int], paths: Sequence[str]):
    """The Dask graph: ``map_blocks`` over the frame indices ``todo``, one task per block.

    Parameters
    ----------
    plan
        The store and filters; ``plan.task_frames`` frames form one task block (one
        chunk of the status array, so each status chunk has exactly one writer).
    todo
        Frame indices to process, consisting of whole zarr chunks, ascending.
    paths
        The source path of *every* frame of the store (indexed by frame number).

    Returns
    -------
    dask.array.Array
        1-D object array aligned with ``todo``, chunked by task block; computing a
        block processes its frames and yields their :class:`FrameResult`.

    Raises
    ------
    ValueError
        ``todo`` is empty.
    """
    import dask.array as da

    todo = np.asarray(todo, dtype=np.int64)
    if todo.size == 0:
        raise ValueError("nothing to do: every frame is already done")
    _, sizes = np.unique(todo // plan.task_frames, return_counts=True)
    chunks = (tuple(int(n) for n in sizes),)
    index_array = da.from_array(todo, chunks=chunks, name=False)
    source = np.empty(todo.size, dtype=object)
    source[:] = [str(paths[i]) for i in todo]
    path_array = da.from_array(source, chunks=chunks, name=False)
    return da.map_blocks(
        _run_block,
        index_array,
        path_array,
        plan=plan,
        dtype=object,
        meta=np.empty((0,), dtype=object),
    )


# --------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------


def _compressors(name: str, dtype: np.dtype):
    """The codec list for a result array: ``name`` for floats; masks are always compressed.

    Boolean and integer masks are mostly zeros (Canny: 1 MB → ~20 kB with LZ4), so
    they get LZ4 even with ``none``; float results of edge filters barely compress
    (~10 %), so their codec is the user's choice.
    """
    from zarr.codecs import BloscCodec, ZstdCodec

    if name not in COMPRESSIONS:
        raise BatchError(f"--compression must be one of {', '.join(COMPRESSIONS)}, got {name!r}")
    if name == "none" and dtype.kind == "f":
        return None
    if name == "zstd":
        return [ZstdCodec(level=1)]
    shuffle = "shuffle" if dtype.itemsize > 1 else "noshuffle"
    return [BloscCodec(cname="lz4", clevel=5, shuffle=shuffle)]


def _store_path(out: str | os.PathLike) -> str:
    text = os.fspath(out)
    return text if "://" in text else os.path.abspath(os.path.expanduser(text))


def _is_local(store: str) -> bool:
    return "://" not in store


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _jsonable(value: Any) -> Any:
    """The value as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(value, default=lambda o: o.item()))


def read_config(group) -> dict[str, Any] | None:
    """The ``napari_xray`` attribute of a batch store's group, or ``None`` if it is not one."""
    info = dict(group.attrs).get("napari_xray")
    if isinstance(info, dict) and info.get("format") == STORE_FORMAT:
        return info
    return None


def read_status(group) -> np.ndarray:
    """The per-frame status array (0 to do, 1 done, 2 failed) of an open store."""
    return np.asarray(group[STATUS_ARRAY][:], dtype=np.uint8)


def probe_frame(
    paths: Sequence[Path], shape: tuple[int, int] | None = None
) -> tuple[int, np.ndarray]:
    """The first frame that reads as a single 2-D image (of ``shape``, if given).

    Returns
    -------
    (int, numpy.ndarray)
        Its index in ``paths`` and the frame.

    Raises
    ------
    BatchError
        No input can be read (the message quotes the first error).
    """
    first_error = None
    for index, path in enumerate(paths):
        try:
            frame = read_xray(path)
        except (XrayReadError, OSError, ValueError) as exc:
            first_error = first_error or str(exc)
            continue
        if frame.ndim == 2 and (shape is None or tuple(frame.shape) == tuple(shape)):
            return index, frame
        first_error = first_error or f"{path.name} has shape {frame.shape}"
    wanted = f" of size {shape[0]}×{shape[1]}" if shape else ""
    raise BatchError(
        f"none of the {len(paths)} inputs is a readable single frame{wanted} "
        f"(first problem: {first_error})"
    )


def _describe_difference(recorded: dict[str, Any], requested: dict[str, Any]) -> str | None:
    for name in ("filters", "float_dtype", "frame_shape", "input_dtype", "n_frames"):
        if recorded.get(name) != requested.get(name):
            return f"{name}: the store has {recorded.get(name)!r}, this run asks for " \
                   f"{requested.get(name)!r}"
    return None


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
    log: Callable[[str], None] = lambda message: None,
) -> tuple[BatchPlan, Any]:
    """Create the store for ``files`` × ``keys``, or reopen a compatible one to resume.

    A new store takes its frame size and pixel type from the first readable
    input (or ``shape``), runs every operation on that frame once to learn the
    output dtypes and contrast limits (nothing per filter is hard-coded), and
    creates the arrays described in the module docstring.

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
        ``out`` exists but is not a napari-xray store, or was made with other
        inputs/filters/parameters; no input is readable; bad option values.
    """
    import zarr

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
    store = _store_path(out)
    source_paths = [str(p) for p in files]
    requested_filters = [{"key": k, "params": _jsonable(dict(params[k]))} for k in keys]

    exists = _store_exists(store)
    if exists and overwrite:
        _delete_store(store)
        exists = False
    if exists:
        try:
            group = zarr.open_group(store, mode="r+", zarr_format=3)
        except Exception as exc:  # zarr raises several kinds for a foreign folder
            raise BatchError(
                f"{out} exists and is not a Zarr v3 store ({type(exc).__name__}: {exc}); "
                "choose another --out"
            ) from None
        config = read_config(group)
        if config is None:
            raise BatchError(
                f"{out} exists but is not a napari-xray batch store; choose another --out"
            )
        recorded_filters = [{"key": f["key"], "params": f["params"]} for f in config["filters"]]
        requested = {
            "filters": requested_filters,
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
            filters=tuple(
                FilterSpec(f["key"], f["params"], f["dtype"]) for f in config["filters"]
            ),
            frame_shape=tuple(config["frame_shape"]),
            input_dtype=config["input_dtype"],
            chunk_frames=int(config["chunk_frames"]),
            n_frames=int(config["n_frames"]),
            task_frames=int(config["task_frames"]),
        )
        return plan, group

    probe_index, frame = probe_frame(files, shape)
    frame_shape = tuple(int(s) for s in (shape or frame.shape))
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
        "created": _now(),
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
    building = store
    if _is_local(store):
        final = Path(store)
        building = str(final.with_name(f".{final.name}.creating-{store_id[:8]}"))
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
        status = group.create_array(
            STATUS_ARRAY,
            shape=(n,),
            chunks=(task_frames,),
            dtype="uint8",
            fill_value=STATUS_TODO,
            compressors=None,
            dimension_names=("frame",),
        )
        status.attrs.update(
            {
                "codes": config["status_codes"],
                "file_names": [p.name for p in files],
                "source_paths": source_paths,
            }
        )
        group.attrs.update({"napari_xray": config, "report": _empty_report(n)})
    except BaseException:
        if building != store:
            shutil.rmtree(building, ignore_errors=True)
        raise
    if building != store:
        os.rename(building, store)
        group = zarr.open_group(store, mode="r+", zarr_format=3)
    log(
        f"created {out}: {n} frames of {frame_shape[0]}×{frame_shape[1]} {frame.dtype}, "
        f"arrays {', '.join(keys)} ({float_dtype} results, {compression} compression)"
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


def _version() -> str:
    from napari_xray import __version__

    return __version__


def _store_exists(store: str) -> bool:
    if _is_local(store):
        return os.path.exists(store)
    import zarr

    try:
        zarr.open_group(store, mode="r")
    except Exception:
        return False
    return True


def _delete_store(store: str) -> None:
    """Delete a napari-xray store (refuses anything else)."""
    import zarr

    try:
        config = read_config(zarr.open_group(store, mode="r", zarr_format=3))
    except Exception:
        config = None
    if config is None:
        if _is_local(store) and os.path.isdir(store) and not os.listdir(store):
            os.rmdir(store)
            return
        raise BatchError(
            f"--overwrite: {store} is not a napari-xray batch store; refusing to delete it"
        )
    if _is_local(store):
        shutil.rmtree(store)
    else:
        zarr.open_group(store, mode="w", zarr_format=3)


def _empty_report(n_frames: int) -> dict[str, Any]:
    return {
        "frames": n_frames,
        "done": 0,
        "failed": 0,
        "to_do": n_frames,
        "failures": [],
        "updated": _now(),
        "last_run": None,
    }


def _remove_partial_files(store: str) -> int:
    """Delete temporary ``*.partial`` chunk files a killed run left behind (local stores)."""
    removed = 0
    for root, _dirs, names in os.walk(store):
        for name in names:
            if name.endswith(".partial"):
                try:
                    os.remove(os.path.join(root, name))
                    removed += 1
                except OSError:
                    pass
    return removed


def _todo_frames(plan: BatchPlan, status: np.ndarray) -> np.ndarray:
    """Frame indices of every chunk holding a frame that is not done (whole chunks)."""
    not_done = status != STATUS_DONE
    chunks = np.unique(np.flatnonzero(not_done) // plan.chunk_frames)
    if chunks.size == 0:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([np.arange(*plan.chunk_bounds(int(c))) for c in chunks])


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


@dataclass
class BatchSummary:
    """The outcome of one run (also what the CLI prints at the end)."""

    store: str
    n_frames: int
    already_done: int = 0
    processed: int = 0
    ok: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    startup_seconds: float = 0.0
    workers: int = 0
    threads: int = 0
    scheduler: str = ""
    read_seconds: float = 0.0
    filter_seconds: float = 0.0
    write_seconds: float = 0.0
    interrupted: bool = False

    @property
    def images_per_second(self) -> float:
        """Frames processed per second of wall time (cluster start-up excluded)."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        """The summary line(s) printed at the end of a run."""
        lines = [
            f"napari-xray batch: processed {self.processed} of {self.n_frames} frames "
            f"({self.already_done} already done): {self.ok} ok, {len(self.failures)} failed, "
            f"in {self.seconds:.2f} s ({self.images_per_second:.2f} images/s on "
            f"{self.workers} worker(s), {self.threads} thread(s); cluster start "
            f"{self.startup_seconds:.1f} s) -> {self.store}"
        ]
        if self.processed:
            per = 1e3 / self.processed
            lines.append(
                f"  per frame in the workers: read {self.read_seconds * per:.1f} ms, filters "
                f"{self.filter_seconds * per:.1f} ms, write {self.write_seconds * per:.1f} ms"
            )
        for failure in self.failures[:20]:
            lines.append(f"  failed: {failure['file']}: {failure['reason']}")
        if len(self.failures) > 20:
            lines.append(f"  … and {len(self.failures) - 20} more (see the store's report)")
        return "\n".join(lines)


@contextmanager
def dask_client(
    scheduler_address: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    log: Callable[[str], None] = lambda message: None,
):
    """Context manager: ``(client, where)`` for a batch, never the global default client.

    An address (argument, or ``DASK_SCHEDULER_ADDRESS`` when ``workers`` is not
    given) or a scheduler file connects to that cluster (``where`` is its
    address); otherwise a LocalCluster of ``workers`` (default: one per core)
    single-threaded processes on 127.0.0.1, without dashboard, is started
    (``where == "local"``) with :data:`WORKER_ENVIRONMENT`. Everything started
    here is closed on exit, also on Ctrl-C.

    Raises
    ------
    BatchError
        The scheduler cannot be reached, no worker joins within a minute, or
        ``workers < 1``.
    """
    import logging

    from distributed import Client, LocalCluster

    if scheduler_address is None and scheduler_file is None and workers is None:
        import dask

        scheduler_address = os.environ.get("DASK_SCHEDULER_ADDRESS") or dask.config.get(
            "scheduler-address", None
        )
    if scheduler_address or scheduler_file:
        target = scheduler_address or f"scheduler file {scheduler_file}"
        try:
            client = Client(
                scheduler_address,
                scheduler_file=scheduler_file,
                set_as_default=False,
                timeout="30s",
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise BatchError(
                f"cannot connect to the Dask scheduler at {target} ({exc}); check the address "
                "or start one with 'dask scheduler'"
            ) from None
        with client:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
            except TimeoutError:
                raise BatchError(
                    f"no Dask worker joined the scheduler at {target} within "
                    f"{WORKER_WAIT_SECONDS:g} s; start workers with 'dask worker {target}'"
                ) from None
            yield client, str(client.scheduler.address)
        return
    n_workers = int(workers) if workers is not None else (os.cpu_count() or 1)
    if n_workers < 1:
        raise BatchError(f"--workers must be at least 1, got {workers}")
    log(f"starting a local Dask cluster: {n_workers} worker process(es), 1 thread each")
    import dask

    with (
        dask.config.set(WORKER_ENVIRONMENT),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # the scheduler's small HTTP endpoint: any free port on 127.0.0.1, never :8787
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            # task errors reach the client as exceptions; worker shutdown chatter is noise
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client, "local"


def _check_workers(
    client, plan: BatchPlan, probe_path: str, local: bool = False
) -> tuple[int, int]:
    """Fail early, with a clear message, if a worker cannot run the batch; (workers, threads)."""
    try:
        answers = client.run(_worker_check, plan.store, probe_path, local)
    except Exception as exc:
        raise BatchError(
            f"the Dask workers cannot run napari-xray ({type(exc).__name__}: {exc}); install "
            "napari-xray in the workers' environment"
        ) from None
    for worker, answer in answers.items():
        if not answer["store_visible"]:
            raise BatchError(
                f"worker {worker} cannot see the store {plan.store}; the inputs and the "
                "output must be on a filesystem (or object store) shared by all workers"
            )
        if not answer["input_visible"]:
            raise BatchError(
                f"worker {worker} cannot see the input {probe_path}; the inputs must be on "
                "a filesystem shared by all workers"
            )
    info = client.scheduler_info(n_workers=-1)["workers"]
    return len(info), sum(int(w.get("nthreads", 1)) for w in info.values())


def _write_report(group, plan: BatchPlan, files: Sequence[Path], failures: Mapping[int, str],
                  last_run: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the store's report from the status array and the known failure reasons."""
    status = read_status(group)
    previous = {
        int(f["index"]): f["reason"]
        for f in (dict(group.attrs).get("report") or {}).get("failures", [])
    }
    reasons = {**previous, **failures}
    failed = np.flatnonzero(status == STATUS_FAILED)
    report = {
        "frames": plan.n_frames,
        "done": int(np.count_nonzero(status == STATUS_DONE)),
        "failed": int(failed.size),
        "to_do": int(np.count_nonzero(status == STATUS_TODO)),
        "failures": [
            {
                "index": int(i),
                "file": files[i].name,
                "path": str(files[i]),
                "reason": reasons.get(int(i), "unknown (the run that saw it was killed)"),
            }
            for i in failed
        ],
        "updated": _now(),
        "last_run": last_run,
    }
    group.attrs["report"] = report
    return report


def run_batch(
    inputs: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    *,
    filters: str | Sequence[str] | None = None,
    params: Iterable[str] | Mapping[str, Mapping[str, Any]] | None = None,
    float_dtype: str = "float32",
    compression: str = "none",
    chunk_frames: int = 1,
    frames_per_task: int | None = None,
    shape: str | Sequence[int] | None = None,
    scheduler_address: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    client=None,
    strict: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Filter every input frame into the Zarr store ``out``; resumes a partial store.

    Parameters
    ----------
    inputs
        Files, folders and glob patterns (see :func:`discover_inputs`).
    out
        The store: a local path (``results.zarr``) or an fsspec URL.
    filters, params
        Operation keys (default: all) and ``"KEY.NAME=VALUE"`` overrides.
    float_dtype
        ``"float32"`` (default) or ``"float16"`` for floating-point results.
    compression
        Codec of floating-point results: ``"none"`` (default: edge-filter floats
        shrink only ~10 % and compressing costs more time than it saves),
        ``"lz4"`` (Blosc LZ4 + byte shuffle) or ``"zstd"`` (level 1). Masks are
        always compressed (LZ4, or Zstd with ``"zstd"``).
    chunk_frames, frames_per_task
        Frames per zarr chunk of the results (and per completion record); frames
        per Dask task and per chunk of the status array (default ``N / 32``, at
        most 64). Both are fixed when the store is created.
    shape
        ``"HxW"``: the frame size (default: that of the first readable input).
    scheduler_address, scheduler_file, workers, client
        Where to run: an existing client, a scheduler, or a LocalCluster of
        ``workers`` processes (default: one per core). ``DASK_SCHEDULER_ADDRESS``
        is used when none of these is given.
    strict
        Stop at the first bad file (it is still recorded in the report; frames
        already done stay done) and raise :class:`BatchError`.
    overwrite
        Delete an existing napari-xray store at ``out`` first.
    progress
        Show a progress bar (tqdm, on stderr).
    log
        Called with one-line messages (default: print to stderr).

    Returns
    -------
    BatchSummary

    Raises
    ------
    BatchError
        User errors (inputs, options, incompatible store, no workers, a bad file
        under ``strict``, a task that failed on the cluster).
    KeyboardInterrupt
        On Ctrl-C, after cancelling the work and writing the report; the store
        stays consistent and a rerun finishes it.
    """
    if log is None:
        def log(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

    files = discover_inputs(inputs)
    keys = parse_filters(filters)
    resolved = parse_params(params, keys)
    plan, group = open_or_create_store(
        out,
        files,
        keys,
        resolved,
        float_dtype=float_dtype,
        compression=compression,
        chunk_frames=chunk_frames,
        frames_per_task=frames_per_task,
        shape=parse_shape(shape),
        overwrite=overwrite,
        log=log,
    )
    report = dict(group.attrs).get("report") or {}
    last = report.get("last_run") or {}
    if last and last.get("state") != "complete" and _is_local(plan.store):
        removed = _remove_partial_files(plan.store)
        log(
            "the previous run of this store did not finish "
            f"({_LAST_STATE.get(last.get('state'), last.get('state'))}); resuming"
            + (f" (removed {removed} partial chunk file(s))" if removed else "")
        )
    status = read_status(group)
    todo = _todo_frames(plan, status)
    summary = BatchSummary(
        store=os.fspath(out),
        n_frames=plan.n_frames,
        already_done=int(plan.n_frames - todo.size),
    )
    if todo.size == 0:
        log(f"{out}: all {plan.n_frames} frames are already done")
        return summary

    source_paths = [str(p) for p in files]
    run_info: dict[str, Any] = {"started": _now(), "state": "running", "frames": int(todo.size)}
    group.attrs["report"] = dict(report, last_run=run_info)
    failures: dict[int, str] = {}
    state = "stopped"
    t_start = time.perf_counter()
    t0 = None
    try:
        with _maybe_client(client, scheduler_address, scheduler_file, workers, log) as (cl, where):
            summary.startup_seconds = time.perf_counter() - t_start
            summary.scheduler = where
            summary.workers, summary.threads = _check_workers(
                cl, plan, source_paths[int(todo[0])], local=where == "local"
            )
            graph = build_graph(plan, todo, source_paths)
            t0 = time.perf_counter()
            try:
                _compute(cl, graph, summary, failures, strict, progress, files)
            finally:
                summary.seconds = time.perf_counter() - t0
        state = "complete"
    except KeyboardInterrupt:
        state = "interrupted"
        raise
    finally:
        # Written after the cluster is closed, so no task still changes the status.
        summary.interrupted = state != "complete"
        run_info.update(_run_record(summary, state))
        final = _write_report(group, plan, files, failures, run_info)
        if state == "interrupted":
            log(
                f"interrupted: {final['done']} of {final['frames']} frames are done and the "
                "store is consistent; rerun the same command to finish it"
            )
    return summary


@contextmanager
def _maybe_client(client, scheduler_address, scheduler_file, workers, log):
    if client is not None:
        yield client, str(getattr(client.scheduler, "address", "client"))
        return
    with dask_client(scheduler_address, scheduler_file, workers, log) as pair:
        yield pair


def _run_record(summary: BatchSummary, state: str) -> dict[str, Any]:
    return {
        "state": state,
        "finished": _now(),
        "processed": summary.processed,
        "ok": summary.ok,
        "failed": len(summary.failures),
        "seconds": round(summary.seconds, 3),
        "images_per_second": round(summary.images_per_second, 3),
        "workers": summary.workers,
        "threads": summary.threads,
        "scheduler": summary.scheduler,
    }


def _compute(client, graph, summary: BatchSummary, failures: dict[int, str], strict: bool,
             progress: bool, files: Sequence[Path]) -> None:
    """Run the graph on ``client``; fold each block's results into ``summary`` as it ends."""
    from distributed import as_completed, futures_of
    from tqdm.auto import tqdm

    persisted = client.persist(graph)
    futures = futures_of(persisted)
    bar = tqdm(
        total=int(graph.shape[0]),
        unit="img",
        desc="batch",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        for future in as_completed(futures, loop=client.loop):
            try:
                block = future.result()
            except Exception as exc:
                raise BatchError(
                    f"a batch task failed on the cluster ({type(exc).__name__}: {exc}); "
                    "frames already done are kept, rerun to resume"
                ) from exc
            for result in block:
                summary.processed += 1
                summary.read_seconds += result.read_seconds
                summary.filter_seconds += result.filter_seconds
                summary.write_seconds += result.write_seconds
                if result.status == STATUS_DONE:
                    summary.ok += 1
                else:
                    failures[result.index] = result.reason
                    summary.failures.append(
                        {"index": result.index, "file": files[result.index].name,
                         "reason": result.reason}
                    )
            bar.update(len(block))
            if strict and summary.failures:
                first = summary.failures[0]
                raise BatchError(
                    f"--strict: {first['file']} cannot be used: {first['reason']}; "
                    f"stopped after {summary.processed} frame(s) (those done are kept). "
                    "Fix or remove the file and rerun, or drop --strict to skip bad files"
                )
    finally:
        bar.close()
        client.cancel(futures)
        del persisted


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``napari-xray batch`` on the CLI's ``subparsers``; returns the parser."""
    keys = ",".join(OPERATIONS)
    parser = subparsers.add_parser(
        "batch",
        help="filter a whole dataset on Dask into a resumable Zarr store",
        description=(
            "Filter every input frame with the selected operations on a Dask cluster and "
            "write one (N, H, W) array per operation into a Zarr v3 store that napari opens "
            "lazily. Rerun the same command to resume an interrupted run."
        ),
        epilog=(
            "Parameters: " + "; ".join(
                f"{op.key}: " + (", ".join(
                    f"{p.name}={p.default}" for p in op.parameters) or "none")
                for op in OPERATIONS.values()
            )
            + f". Test hook: {TEST_DELAY_ENV}=SECONDS makes each frame sleep."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="PNG/DICOM files, folders or glob patterns (quote globs)")
    parser.add_argument("--out", "-o", required=True, metavar="STORE.zarr",
                        help="the Zarr store to create or resume")
    parser.add_argument("--filters", default=None, metavar="LIST",
                        help=f"comma-separated operations (default: {keys})")
    parser.add_argument("--param", "-p", action="append", default=[], metavar="KEY.NAME=VALUE",
                        help="override a parameter, e.g. log.sigma=2 (repeatable)")
    parser.add_argument("--dtype", choices=FLOAT_DTYPES, default="float32",
                        help="dtype of floating-point results (default float32)")
    parser.add_argument("--compression", choices=COMPRESSIONS, default="none",
                        help="codec of floating-point results (default none; lz4 = Blosc LZ4 "
                        "+ shuffle, zstd = level 1); masks are always compressed")
    parser.add_argument("--chunk-frames", type=int, default=1, metavar="N",
                        help="frames per Zarr chunk and per completion record (default 1)")
    parser.add_argument("--frames-per-task", type=int, default=None, metavar="N",
                        help="frames per Dask task and per chunk of the status array "
                        "(default: 1/32 of the frames, at most 64)")
    parser.add_argument("--shape", default=None, metavar="HxW",
                        help="frame size (default: the first readable input's); other sizes "
                        "are reported as failures")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler-address", default=None, metavar="tcp://HOST:PORT",
                       help="run on this existing Dask cluster (default: DASK_SCHEDULER_ADDRESS,"
                       " else a local cluster)")
    where.add_argument("--scheduler-file", default=None, metavar="FILE",
                       help="run on the cluster described by this scheduler file")
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of the local cluster (default: one per core)")
    parser.add_argument("--strict", action="store_true",
                        help="stop with an error at the first bad file instead of skipping it")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete an existing napari-xray store at --out and start again")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run_command)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """The ``batch`` subcommand: run, print the summary; returns the exit status (0).

    Raises
    ------
    BatchError
        For user errors. It is a ``ValueError``, which ``napari_xray.cli.main``
        prints as one line with exit status 2 (also under ``python -m
        napari_xray.cli``, where the CLI's own exception classes are re-created).
    KeyboardInterrupt
        On Ctrl-C (the CLI exits with status 130).
    """
    summary = run_batch(
        args.inputs,
        args.out,
        filters=args.filters,
        params=args.param,
        float_dtype=args.dtype,
        compression=args.compression,
        chunk_frames=args.chunk_frames,
        frames_per_task=args.frames_per_task,
        shape=args.shape,
        scheduler_address=args.scheduler_address,
        scheduler_file=args.scheduler_file,
        workers=args.workers,
        strict=args.strict,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(summary.format(), flush=True)
    return 0
