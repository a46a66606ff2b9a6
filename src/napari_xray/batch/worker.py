"""What runs on the Dask workers: read, filter and write whole chunks of frames.

With ``verify`` a task first rereads each done chunk and its inputs and
recomputes only what is damaged or changed (:mod:`napari_xray.batch.integrity`).
Also the graph that sends that work to them (:func:`build_graph`), the check each
worker passes before a run (:func:`check_workers`) and the environment local
worker processes start with (:data:`WORKER_ENVIRONMENT`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import wait
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from napari_xray.batch.inputs import FilterSpec
from napari_xray.batch.integrity import (
    FINGERPRINT_ARRAY,
    Fingerprint,
    fingerprint_of,
    read_or_zeros,
    verify_chunk,
)
from napari_xray.batch.store import BatchPlan, is_local_store
from napari_xray.engine.dtypes import to_float16
from napari_xray.engine.operations import OPERATIONS
from napari_xray.engine.pipeline import run_operations
from napari_xray.errors import BatchError, XrayReadError
from napari_xray.io.read import read_xray
from napari_xray.io.store import STATUS_ARRAY, STATUS_DONE, STATUS_FAILED, STATUS_TODO

__all__ = [
    "WORKER_ENVIRONMENT",
    "FrameError",
    "FrameResult",
    "build_graph",
    "check_workers",
    "filter_frame",
    "process_frames",
    "read_frame",
    "read_frame_with_fingerprint",
]

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


class FrameResult(NamedTuple):
    """What a worker reports for one frame (a few bytes, never pixels)."""

    index: int
    status: int  # STATUS_DONE or STATUS_FAILED
    reason: str | None
    read_seconds: float
    filter_seconds: float
    write_seconds: float
    note: str | None = None  # why a done frame was computed again (damage, changed input)
    verified: bool = False  # checked by --verify and kept as it was


class FrameError(Exception):
    """A frame that cannot be processed; its message is the report's reason."""


def read_frame(path: str | os.PathLike, frame_shape: Sequence[int], input_dtype) -> np.ndarray:
    """Read one frame exactly as the reader does and check it fits the store.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` of ``input_dtype`` (colour PNGs converted to grayscale by
        :func:`napari_xray.io.read.read_xray`).

    Raises
    ------
    FrameError
        As :func:`read_frame_with_fingerprint`.
    """
    return read_frame_with_fingerprint(path, frame_shape, input_dtype)[0]


def read_frame_with_fingerprint(
    path: str | os.PathLike, frame_shape: Sequence[int], input_dtype
) -> tuple[np.ndarray, Fingerprint]:
    """Like :func:`read_frame`, and also the input's fingerprint for the store.

    The fingerprint is taken from the bytes read and the file's ``stat`` before
    and after decoding; a file that changes meanwhile is read again once.

    Returns
    -------
    (numpy.ndarray, tuple)
        The frame, and ``(size, mtime_ns, content hash)``.

    Raises
    ------
    FrameError
        The file is unreadable/truncated/not an image (the reader's message), holds
        several frames, has another size ("wrong size") or another pixel type, or
        kept changing while it was read.
    """
    name = Path(path).name
    for _attempt in range(2):
        try:
            with open(path, "rb") as handle:
                before = os.fstat(handle.fileno())
                data = handle.read()
            frame = read_xray(path)
            after = os.stat(path)
        except XrayReadError as exc:
            raise FrameError(str(exc)) from None
        except (OSError, ValueError, TypeError, MemoryError) as exc:
            raise FrameError(f"{name}: {type(exc).__name__}: {exc}") from None
        if _same_file(before, after) and len(data) == before.st_size:
            break
    else:
        raise FrameError(
            f"{name} changed while it was being read; rerun once it is no longer being written"
        )
    if frame.ndim != 2:
        raise FrameError(f"{name} holds {frame.shape[0]} frames; the batch takes single frames")
    if tuple(frame.shape) != tuple(frame_shape):
        raise FrameError(
            f"wrong size: {name} is {frame.shape[0]}×{frame.shape[1]} (rows×columns) but the "
            f"store holds {frame_shape[0]}×{frame_shape[1]} frames (the most common size of "
            "the inputs, or --shape)"
        )
    if frame.dtype != np.dtype(input_dtype):
        raise FrameError(
            f"wrong pixel type: {name} is {frame.dtype} but the store holds {input_dtype} "
            "frames (thresholds and mask values depend on it); convert it or batch it "
            "into another store"
        )
    return frame, fingerprint_of(before, data)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns) == (
        b.st_ino, b.st_dev, b.st_size, b.st_mtime_ns
    )


def filter_frame(
    frame: np.ndarray,
    filters: Sequence[FilterSpec],
    into: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Run every operation of ``filters`` on one frame, cast to the stored dtypes.

    The operations run as one batch (:func:`~napari_xray.engine.pipeline.run_operations`,
    the frame read once); float16 results are cast by
    :func:`~napari_xray.engine.dtypes.to_float16`.

    Parameters
    ----------
    into : mapping, optional
        ``{key: (H, W) array of the stored dtype}`` to write the results into
        (a frame of a chunk's block). The engine's own outputs are then reused
        from frame to frame instead of being allocated anew.

    Returns
    -------
    dict
        ``{key: (H, W) array}`` (the arrays of ``into`` when given).

    Raises
    ------
    FrameError
        An operation rejected the frame, or a result does not fit float16 (the
        message names the operation).
    """
    operations = [(spec.key, spec.params) for spec in filters]
    cache = _thread_cache("engine_outputs")
    reuse = cache.get(_outputs_key(frame, filters)) if into is not None else None
    try:
        computed = run_operations(frame, operations, out=reuse, threads=1)
    except ValueError as exc:
        _raise_for_failing_operation(frame, filters)
        raise FrameError(f"the filters failed: {exc}") from None
    if into is not None:
        cache.clear()  # one set per thread: a thread runs one task at a time
        cache[_outputs_key(frame, filters)] = computed
    results = {}
    for spec, result in zip(filters, computed, strict=True):
        try:
            stored = to_float16(result) if spec.dtype == "float16" else result
        except ValueError as exc:
            raise FrameError(f"{spec.key}: {exc}") from None
        if into is not None:
            into[spec.key][...] = stored
            stored = into[spec.key]
        elif stored.dtype != np.dtype(spec.dtype):
            stored = stored.astype(spec.dtype)
        results[spec.key] = stored
    return results


#: Per thread (a worker may run tasks in several): the engine's outputs of the last
#: frame (see :func:`filter_frame`) and the blocks of the last chunk (:func:`_chunk_blocks`).
_REUSED = threading.local()


def _thread_cache(name: str) -> dict:
    cache = getattr(_REUSED, name, None)
    if cache is None:
        cache = {}
        setattr(_REUSED, name, cache)
    return cache


def _outputs_key(frame: np.ndarray, filters: Sequence[FilterSpec]) -> tuple:
    return frame.shape, frame.dtype.str, repr([(s.key, s.params) for s in filters])


def _raise_for_failing_operation(frame: np.ndarray, filters: Sequence[FilterSpec]) -> None:
    """Raise FrameError naming the first operation of ``filters`` that rejects ``frame``."""
    for spec in filters:
        try:
            OPERATIONS[spec.key](frame, **spec.params)
        except ValueError as exc:
            raise FrameError(f"{spec.key} failed: {exc}") from None


@lru_cache(maxsize=8)
def _open_arrays(store: str, store_id: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The store's arrays opened for writing (cached per worker process and store id).

    A local store writes its result chunks past the page cache
    (:class:`~napari_xray.batch.direct_store.DirectWriteStore`).
    """
    import zarr

    from napari_xray.batch.direct_store import DirectWriteStore

    location = DirectWriteStore(store) if is_local_store(store) else store.rstrip("/")
    # Writing chunks without first comparing them with the fill value saves ~1 ms per
    # 4 MB chunk; an all-zero chunk (a failed frame) is then stored like any other.
    return {
        key: zarr.open_array(location, path=key, mode="r+").with_config(
            {"write_empty_chunks": True}
        )
        for key in keys
    }


def process_frames(
    plan: BatchPlan, indices: Sequence[int], paths: Sequence[str], verify: bool = False
) -> list[FrameResult]:
    """Read, filter and write the frames ``indices`` (whole chunks) into the store.

    For each zarr chunk touched, all of its frames are computed, every result
    array's chunk is written, then the chunk's input fingerprints and only then
    its ``status`` entries (done/failed). Unreadable frames are written as zeros
    and marked failed.

    Parameters
    ----------
    plan
        The store and filters (see :class:`~napari_xray.batch.store.BatchPlan`).
    indices, paths
        Frame numbers and their files; every chunk touched must be complete.
    verify
        Chunks whose frames are all done are first read back (checksums, chunk
        files present) and their inputs compared with the recorded fingerprints
        (size and content hash); only a chunk that fails is computed again.

    Returns
    -------
    list of FrameResult
        One per frame, with the failure reason, why it was recomputed, and
        worker-side timings.

    Raises
    ------
    ValueError
        ``indices`` does not cover whole chunks. Store errors (e.g. the store is
        not visible from this worker) propagate.
    """
    indices = [int(i) for i in indices]
    path_of = dict(zip(indices, (str(p) for p in paths), strict=True))
    keys = tuple(spec.key for spec in plan.filters)
    arrays = _open_arrays(plan.store, plan.store_id, (*keys, STATUS_ARRAY, FINGERPRINT_ARRAY))
    results: list[FrameResult] = []
    for block in sorted({i // plan.task_frames for i in indices}):
        block_start, block_stop = plan.block_bounds(block)
        # This task is the only writer of the block's status and fingerprint chunks:
        # it keeps the entries of frames done earlier and rewrites both chunks after
        # each of its result chunks is stored. A chunk that cannot be read back
        # (damaged) starts again from "to do".
        where = slice(block_start, block_stop)
        codes, status_note = read_or_zeros(arrays[STATUS_ARRAY], where, "status")
        prints, prints_note = read_or_zeros(arrays[FINGERPRINT_ARRAY], where, "fingerprint")
        if prints_note:
            codes[:] = STATUS_TODO
        chunks = sorted({i // plan.chunk_frames for i in indices if block_start <= i < block_stop})
        for chunk in chunks:
            start, stop = plan.chunk_bounds(chunk)
            missing = [i for i in range(start, stop) if i not in path_of]
            if missing:
                raise ValueError(
                    f"frames {missing} of chunk {chunk} were not given; pass whole chunks"
                )
            local = slice(start - block_start, stop - block_start)
            note = status_note or prints_note
            if verify and np.all(codes[local] == STATUS_DONE):
                problems = verify_chunk(plan, arrays, keys, start, stop, path_of, prints[local])
                if not problems:
                    results.extend(
                        FrameResult(i, STATUS_DONE, None, 0.0, 0.0, 0.0, verified=True)
                        for i in range(start, stop)
                    )
                    continue
                note = "; ".join(problems)
            chunk_results, chunk_prints = _process_chunk(plan, arrays, keys, start, stop, path_of)
            for result, fingerprint in zip(chunk_results, chunk_prints, strict=True):
                codes[result.index - block_start] = result.status
                prints[result.index - block_start] = fingerprint
            # Completion is recorded only after every result of the chunk is stored.
            arrays[FINGERPRINT_ARRAY][where] = prints
            arrays[STATUS_ARRAY][where] = codes
            results.extend(r._replace(note=note) for r in chunk_results)
    return results


def _process_chunk(
    plan, arrays, keys, start, stop, path_of
) -> tuple[list[FrameResult], list[Fingerprint]]:
    """Read, filter and store frames ``start:stop`` (one zarr chunk); no status written."""
    blocks = _chunk_blocks(plan, stop - start)
    pending = []
    fingerprints: list[Fingerprint] = []
    for offset, index in enumerate(range(start, stop)):
        t0 = time.perf_counter()
        reason = None
        fingerprint: Fingerprint = (0, 0, 0)
        into = {key: block[offset] for key, block in blocks.items()}
        try:
            frame, fingerprint = read_frame_with_fingerprint(
                path_of[index], plan.frame_shape, plan.input_dtype
            )
            t1 = time.perf_counter()
            filter_frame(frame, plan.filters, into=into)
        except FrameError as exc:
            reason = str(exc)
            fingerprint = (0, 0, 0)
            t1 = time.perf_counter()
            for plane in into.values():
                plane[...] = 0
        t2 = time.perf_counter()
        pending.append((index, reason, t1 - t0, t2 - t1))
        fingerprints.append(fingerprint)
    t3 = time.perf_counter()
    if all(reason for _, reason, _, _ in pending):
        # Only zeros (failed frames): let zarr drop the chunks instead of storing them.
        arrays = {key: arrays[key].with_config({"write_empty_chunks": False}) for key in keys}
    _write_chunks(arrays, blocks, slice(start, stop))
    write_share = (time.perf_counter() - t3) / (stop - start)
    results = [
        FrameResult(index, STATUS_FAILED if reason else STATUS_DONE, reason, read_s, filter_s,
                    write_share)
        for index, reason, read_s, filter_s in pending
    ]
    return results, fingerprints


def _chunk_blocks(plan: BatchPlan, frames: int) -> dict[str, np.ndarray]:
    """One ``(frames, H, W)`` block per stored array, reused from chunk to chunk.

    Written only between a chunk's first read and the end of its write
    (:func:`_write_chunks` returns when zarr holds the data), so one set is enough;
    reused memory also spares the cost of first touching fresh pages.
    """
    cache = _thread_cache("blocks")
    key = (frames, tuple(plan.frame_shape), tuple((s.key, s.dtype) for s in plan.filters))
    blocks = cache.get(key)
    if blocks is None:
        cache.clear()
        blocks = {
            spec.key: np.zeros((frames, *plan.frame_shape), dtype=spec.dtype)
            for spec in plan.filters
        }
        cache[key] = blocks
    return blocks


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

    futures = [_WRITE_POOL.submit(write, key) for key in blocks]
    # Every write over before any error is raised: the blocks are reused by the next chunk.
    wait(futures)
    for future in futures:
        future.result()


_THREADS_LIMITED = False


def _limit_threads() -> None:
    """One compute thread per task: OpenCV's own pool oversubscribes the worker's core."""
    global _THREADS_LIMITED
    if not _THREADS_LIMITED:
        import cv2

        cv2.setNumThreads(1)
        _THREADS_LIMITED = True


def _run_block(
    indices: np.ndarray, paths: np.ndarray, plan: BatchPlan, verify: bool = False
) -> np.ndarray:
    """``map_blocks`` adapter: a block of frame indices → object array of FrameResult."""
    _limit_threads()
    results = process_frames(plan, indices, paths, verify=verify)
    out = np.empty(len(results), dtype=object)
    for i, result in enumerate(results):
        out[i] = result
    return out


def build_graph(plan: BatchPlan, todo: Sequence[int], paths: Sequence[str],
                verify: bool = False):
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
    verify
        Check done chunks and recompute only damaged ones (see :func:`process_frames`).

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
        verify=verify,
        dtype=object,
        meta=np.empty((0,), dtype=object),
    )


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

    return {
        "version": __version__,
        "store_visible": (not is_local_store(store))
        or os.path.exists(os.path.join(store, "zarr.json")),
        "input_visible": os.path.exists(probe_path),
    }


def check_workers(
    client, plan: BatchPlan, probe_path: str, local: bool = False
) -> tuple[int, int]:
    """Fail early, with a clear message, if a worker cannot run the batch.

    Every worker must import napari-xray and see the store and the input
    ``probe_path``. With ``local`` (a LocalCluster started for this run) the
    workers also ignore Ctrl-C, which only the client handles.

    Returns
    -------
    (int, int)
        The number of workers and their total threads.

    Raises
    ------
    BatchError
        A worker cannot import napari-xray or cannot see the store or the input.
    """
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
