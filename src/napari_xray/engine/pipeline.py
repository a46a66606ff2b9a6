"""Several operations on one image in one pass: every (frame, operation) task of a
call goes to the thread pool in one dispatch, longest first, and writes into
preallocated (or caller-supplied, reusable) outputs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from napari_xray.engine._frames import aligned_empty, run_tasks
from napari_xray.engine.filters import frame_plan
from napari_xray.engine.operations import get_operation

__all__ = ["run_operations"]


def run_operations(
    image,
    operations: Iterable[tuple[str, Mapping[str, Any] | None]],
    out: Sequence[np.ndarray | None] | None = None,
    threads: int | None = None,
) -> list[np.ndarray]:
    """Run ``operations`` on every frame of ``image``; return their results in order.

    ``run_operations(stack, [("log", {"sigma": 1}), ("sobel", {})])`` equals
    ``[laplace_of_gaussian(stack, 1), sobel_magnitude(stack)]`` bit for bit, but
    all frames of all operations run as one batch of tasks on the thread pool,
    the most expensive first, so the threads stay busy to the end.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
        One radiograph or a stack of separate radiographs.
    operations : iterable of (key, params)
        Operation keys of :data:`~napari_xray.engine.operations.OPERATIONS` with
        their parameters (missing ones take the defaults). An operation listed
        twice with the same parameters is computed once; both entries then hold
        the same array.
    out : sequence of arrays or None, optional
        Arrays to write the results into, one per operation (``None`` entries:
        allocate). Each must have the image's shape and the result's dtype and
        be C-contiguous and writeable. Reusing outputs from call to call saves
        the cost of first touching fresh memory.
    threads : int, optional
        Most threads to use (default: the cores available, up to 8).

    Returns
    -------
    list of numpy.ndarray
        One result per operation.

    Raises
    ------
    KeyError
        For an unknown operation key or parameter name.
    ValueError
        For a bad image, parameter value or output array.
    """
    image = np.asarray(image)  # once, not once per operation
    operations = [(key, dict(params or {})) for key, params in operations]
    if out is not None and len(out) != len(operations):
        raise ValueError(f"out has {len(out)} arrays for {len(operations)} operations")
    results: list[np.ndarray | None] = [None] * len(operations)
    first_of: dict[tuple, int] = {}
    tasks = []
    for position, (key, params) in enumerate(operations):
        operation = get_operation(key)
        values = operation.resolve(params)
        signature = (key, tuple(sorted(values.items())))
        if signature in first_of:
            results[position] = results[first_of[signature]]
            continue
        first_of[signature] = position
        plan = frame_plan(operation.function, image, **values)
        given = None if out is None else out[position]
        target = _checked_out(given, plan.image, plan.out_dtype, key)
        results[position] = target
        for frame_index, task in enumerate(plan.frame_tasks(target)):
            tasks.append((-plan.cost, position, frame_index, task))
    tasks.sort(key=lambda entry: entry[:3])
    run_tasks([entry[3] for entry in tasks], threads)
    return results


def _checked_out(given, image: np.ndarray, dtype, key: str) -> np.ndarray:
    """``given`` if it can hold the result, a fresh aligned array if it is None; else raise."""
    shape = image.shape
    if given is None:
        return aligned_empty(shape, dtype)
    if not isinstance(given, np.ndarray):
        raise ValueError(f"the output for {key} must be a NumPy array, got {type(given).__name__}")
    dtype = np.dtype(dtype)
    if given.shape != shape or given.dtype != dtype:
        raise ValueError(
            f"the output for {key} is {given.dtype} {given.shape}; pass a {dtype} array "
            f"of shape {shape}"
        )
    if not (given.flags.c_contiguous and given.flags.writeable):
        raise ValueError(f"the output for {key} must be C-contiguous and writeable")
    if np.may_share_memory(given, image):
        raise ValueError(f"the output for {key} overlaps the image; pass a separate array")
    return given
