"""Input fingerprints and stored-chunk checks: what lets a rerun trust (or redo) a done frame.

When a frame is done the batch records its input's fingerprint in the store's
``fingerprint`` array: ``(size, mtime_ns, content hash)`` as uint64, the hash being
the first 8 bytes of the SHA-256 of the file's bytes (the bytes read for decoding).
A rerun compares size and mtime of every done frame's input with the record
(one ``stat`` each) and recomputes the frames whose input changed; ``--verify``
also rereads each input to compare the hash, and reads every stored chunk,
whose CRC-32C checksum (Zarr v3's ``crc32c`` codec) names any damage.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FINGERPRINT_ARRAY",
    "FINGERPRINT_FIELDS",
    "Fingerprint",
    "changed_inputs",
    "content_hash",
    "damaged_arrays",
    "fingerprint_of",
    "read_blocks",
    "read_or_zeros",
    "verify_chunk",
]

#: The store array holding one fingerprint per frame, ``(N, 3)`` uint64.
FINGERPRINT_ARRAY = "fingerprint"
#: Its columns.
FINGERPRINT_FIELDS = ("size", "mtime_ns", "sha256_64")

Fingerprint = tuple[int, int, int]


def content_hash(data: bytes) -> int:
    """The first 8 bytes of ``data``'s SHA-256, as an unsigned integer (never 0)."""
    value = int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
    return value or 1


def fingerprint_of(stat: os.stat_result, data: bytes) -> Fingerprint:
    """``(size, mtime_ns, content hash)`` of a file from its ``stat`` and its bytes."""
    return int(stat.st_size), int(stat.st_mtime_ns), content_hash(data)


def read_blocks(array, n: int, block: int, fill: int = 0) -> tuple[np.ndarray, list[int]]:
    """Read ``array[:n]`` block by block; a block that cannot be read becomes ``fill``.

    Returns
    -------
    (numpy.ndarray, list of int)
        The values, and the start index of every damaged block.
    """
    shape = (n, *array.shape[1:])
    values = np.full(shape, fill, dtype=array.dtype)
    damaged = []
    for start in range(0, n, block):
        stop = min(start + block, n)
        try:
            values[start:stop] = array[start:stop]
        except Exception:  # the checksum codec, a truncated or foreign chunk file …
            damaged.append(start)
    return values, damaged


def _stat_pair(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return int(st.st_size), int(st.st_mtime_ns)


def changed_inputs(
    paths: Sequence[str], recorded: np.ndarray, frames: Sequence[int]
) -> list[int]:
    """The frames among ``frames`` whose input's size or mtime differs from ``recorded``.

    ``recorded`` is the ``(N, 3)`` fingerprint array; a frame without a record
    (size 0) or whose file is gone counts as changed.
    """
    frames = [int(i) for i in frames]
    with ThreadPoolExecutor(max_workers=8) as pool:
        now = list(pool.map(_stat_pair, (paths[i] for i in frames)))
    changed = []
    for index, pair in zip(frames, now, strict=True):
        size, mtime_ns = int(recorded[index, 0]), int(recorded[index, 1])
        if size == 0 or pair != (size, mtime_ns):
            changed.append(index)
    return changed


def damaged_arrays(arrays: Mapping[str, Any], where: slice) -> list[str]:
    """Which of ``arrays`` cannot read ``where`` back (checksum mismatch, bad chunk file).

    Returns
    -------
    list of str
        ``"<key>: <reason>"`` for each damaged array, empty when all read back.
    """
    problems = []
    for key, array in arrays.items():
        try:
            array[where]
        except Exception as exc:  # noqa: BLE001 - any failure to decode is damage
            problems.append(f"{key} chunk damaged ({type(exc).__name__}: {exc})")
    return problems


def read_or_zeros(array, where: slice, name: str) -> tuple[np.ndarray, str | None]:
    """``array[where]`` as a new array, or zeros and a note when its chunk is damaged."""
    try:
        return np.array(array[where]), None
    except Exception as exc:  # noqa: BLE001 - a damaged chunk, whatever the codec says
        shape = (where.stop - where.start, *array.shape[1:])
        return np.zeros(shape, dtype=array.dtype), (
            f"its {name} chunk was damaged ({type(exc).__name__}: {exc})"
        )


def verify_chunk(plan, arrays: Mapping[str, Any], keys: Sequence[str], start: int, stop: int,
                 path_of: Mapping[int, str], recorded: np.ndarray) -> list[str]:
    """What is wrong with the done chunk of frames ``start:stop``, if anything.

    Every result array's chunk must read back (checksum) and, for a local store,
    exist as a file (a missing one would read as zeros); every input must still
    have the recorded size and content hash (``recorded``: the chunk's rows of
    the fingerprint array).

    Returns
    -------
    list of str
        One line per problem; empty when the chunk can be kept.
    """
    problems = damaged_arrays({key: arrays[key] for key in keys}, slice(start, stop))
    if "://" not in plan.store:
        tail = ["c", str(start // plan.chunk_frames)] + ["0"] * len(plan.frame_shape)
        problems += [
            f"{key} chunk file missing"
            for key in keys
            if not os.path.exists(os.path.join(plan.store, key, *tail))
        ]
    for offset, index in enumerate(range(start, stop)):
        path = path_of[index]
        size, _mtime_ns, digest = (int(v) for v in recorded[offset])
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            problems.append(f"input {Path(path).name} cannot be read ({exc.strerror})")
            continue
        if len(data) != size or content_hash(data) != digest:
            problems.append(f"input {Path(path).name} changed since it was done")
    return problems
