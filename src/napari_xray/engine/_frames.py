"""Per-frame execution: a persistent thread pool that runs the frame tasks of a call,
per-thread scratch buffers reused from frame to frame, and 64-byte aligned arrays."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: Most threads the engine runs at once.
MAX_THREADS = max(1, min(_available_cores(), 8))
#: Alignment of every array the engine allocates (a cache line, an AVX-512 vector).
ALIGNMENT = 64


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose first byte is ``ALIGNMENT``-aligned."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGNMENT
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def run_tasks(tasks: Sequence[Callable[[], None]], threads: int | None = None) -> None:
    """Run every task, at most ``threads`` (default :data:`MAX_THREADS`) at a time.

    One dispatch to the pool: each worker takes the next task as soon as it is
    free, so listing the longest tasks first balances the threads. A single
    thread or a single task runs in the calling thread. The first exception of a
    task is raised once every worker has stopped.

    While several workers run, OpenCV runs each call in the thread that makes it
    (its own thread pool would put two threads on every core; the setting is the
    process's, so other OpenCV callers meanwhile run on one thread too), and the
    tasks see :func:`sharing_the_cores` true.
    """
    workers = min(MAX_THREADS, MAX_THREADS if threads is None else max(1, int(threads)),
                  len(tasks))  # fmt: skip
    if workers <= 1:
        for task in tasks:
            task()
        return
    pending = iter(tasks)
    lock = threading.Lock()

    def drain() -> None:
        before, _worker_state.sharing = _worker_state.sharing, True
        try:
            while True:
                with lock:
                    task = next(pending, None)
                if task is None:
                    return
                task()
        finally:
            _worker_state.sharing = before

    with _opencv_in_calling_threads():
        futures = [_pool().submit(drain) for _ in range(workers)]
        errors = [future.exception() for future in futures]
    for error in errors:
        if error is not None:
            raise error


class _WorkerState(threading.local):
    sharing = False


_worker_state = _WorkerState()


def sharing_the_cores() -> bool:
    """Whether this thread is one of several pool workers running the tasks of a call.

    The filters then work on whole frames rather than row bands: each band costs
    a dozen calls into OpenCV and NumPy, and between calls a thread needs the
    GIL, which the other workers hold as often. Measured on nine 1024² frames
    with two workers, row bands made Fourier-Prewitt and Canny run at 1.1× one
    worker's speed, whole frames at 1.6–2.1×. One thread alone keeps the bands
    (their buffers stay in the L2 cache).
    """
    return _worker_state.sharing


_opencv_lock = threading.Lock()
_opencv_callers = {"count": 0, "threads": 0}


@contextmanager
def _opencv_in_calling_threads():
    """``cv2.setNumThreads(1)`` while any call of :func:`run_tasks` runs workers; then back."""
    with _opencv_lock:
        if _opencv_callers["count"] == 0:
            _opencv_callers["threads"] = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _opencv_callers["count"] += 1
    try:
        yield
    finally:
        with _opencv_lock:
            _opencv_callers["count"] -= 1
            if _opencv_callers["count"] == 0:
                cv2.setNumThreads(_opencv_callers["threads"])


@dataclass(frozen=True)
class FramePlan:
    """One filter ready to run: the checked image and what fills one output frame.

    ``frame_function(frame, out)`` writes the result of one 2D frame into
    ``out`` (a C-contiguous 2D array of ``out_dtype``). ``cost`` is a rough
    time per megapixel, used to start the longest tasks first.
    """

    image: np.ndarray
    frame_function: Callable[[np.ndarray, np.ndarray], None]
    out_dtype: np.dtype
    cost: float = 1.0

    def frame_tasks(self, out: np.ndarray) -> list[Callable[[], None]]:
        """One task per frame of the image, each filling its frame of ``out``."""
        image, function = self.image, self.frame_function
        if image.ndim == 2:
            return [lambda: function(image, out)]
        return [lambda i=i: function(image[i], out[i]) for i in range(image.shape[0])]


def run_plan(plan: FramePlan, threads: int | None = None) -> np.ndarray:
    """Run ``plan`` on every frame of its image into a fresh aligned array; return it.

    A 2D image is one frame, run in the calling thread; the frames of a stack run
    in the thread pool.
    """
    out = aligned_empty(plan.image.shape, plan.out_dtype)
    run_tasks(plan.frame_tasks(out), threads)
    return out


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    """The threads that run frame tasks, created once per process.

    Long-lived threads keep their scratch buffers (see :class:`Scratch`) from
    call to call; a pool per call would page-fault fresh buffers every time.
    Tasks never submit to this pool themselves, so it cannot deadlock.
    """
    return ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="napari-xray-frames")


class Scratch(threading.local):
    """Per-thread aligned work buffers, reused from frame to frame and call to call.

    Fresh 4 MB arrays cost page faults on every frame; reusing a few buffers
    per thread keeps the filters at the speed of their arithmetic. A name keeps
    one buffer per dtype, grown to the largest shape asked for; smaller requests
    get a view of its start (so row bands of different heights share it).
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """A C-contiguous, aligned buffer called ``name`` of this shape (contents undefined).

        Two buffers in use at once need two names.
        """
        key = (name, np.dtype(dtype).char)
        size = int(np.prod(shape, dtype=np.int64))
        buffer = self.buffers.get(key)
        if buffer is None or buffer.size < size:
            buffer = self.buffers[key] = aligned_empty(size, dtype)
        return buffer[:size].reshape(shape)


#: The calling thread's scratch buffers.
scratch = Scratch()
