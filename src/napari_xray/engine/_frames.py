"""Per-frame execution: a persistent thread pool over the frames of a stack, and
per-thread scratch buffers reused from frame to frame."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

_MAX_THREADS = max(1, min(os.cpu_count() or 1, 8))


def map_frames(
    frame_function: Callable[[np.ndarray, np.ndarray], None],
    image: np.ndarray,
    out_dtype,
) -> np.ndarray:
    """Run ``frame_function(frame, out)`` on each 2D frame of ``image``; return the outputs.

    ``frame_function`` writes its result into ``out``, a C-contiguous 2D slice
    of one preallocated array, so a stack costs no extra copy. A 2D image is
    one frame; the frames of a stack run in a small thread pool.
    """
    out = np.empty(image.shape, dtype=out_dtype)
    if image.ndim == 2:
        frame_function(image, out)
        return out
    workers = min(_MAX_THREADS, image.shape[0])
    if workers <= 1:
        for index in range(image.shape[0]):
            frame_function(image[index], out[index])
        return out
    list(_frame_pool().map(lambda index: frame_function(image[index], out[index]), range(len(out))))
    return out


@lru_cache(maxsize=1)
def _frame_pool() -> ThreadPoolExecutor:
    """The threads that filter the frames of a stack, created once per process.

    Long-lived threads keep their scratch buffers (see :class:`Scratch`) from
    call to call; a pool per call would page-fault fresh buffers every time.
    Frame functions never submit to this pool themselves, so it cannot deadlock.
    """
    return ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="napari-xray-frames")


class Scratch(threading.local):
    """Per-thread float32 work buffers, reused from frame to frame and call to call.

    Fresh 4 MB arrays cost page faults on every frame; reusing a few buffers
    per thread keeps the filters at the speed of their arithmetic.
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, int]) -> np.ndarray:
        key = (name, shape)
        buffer = self.buffers.get(key)
        if buffer is None:
            if len(self.buffers) > 16:  # a new frame size: forget the old ones
                self.buffers.clear()
            buffer = self.buffers[key] = np.empty(shape, dtype=np.float32)
        return buffer


#: The calling thread's scratch buffers.
scratch = Scratch()
