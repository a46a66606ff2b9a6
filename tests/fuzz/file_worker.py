"""The worker process for file cases: reads each file with ``read_xray`` under a memory cap.

Run as ``python -m fuzz.file_worker CAP_BYTES`` with ``tests/`` on ``sys.path``.
It caps its own address space (``RLIMIT_AS``) before importing anything heavy,
then answers one JSON line per request line on stdin::

    {"path": ..., "kind": "png"|"dicom", "expect": ..., "oracle_path": ...}
    -> {"verdict": ..., "detail": ..., "seconds": ..., "max_rss_mb": ...}

The verdict rules are in :func:`judge`.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import warnings
from pathlib import Path


def _same_pixels(kind: str, data, expected) -> str | None:
    """Why ``data`` is not ``expected`` (``None`` if it is)."""
    import numpy as np

    if data.shape != expected.shape:
        return f"shape {data.shape} != oracle {expected.shape}"
    if kind == "png":
        if data.dtype != expected.dtype:
            return f"dtype {data.dtype} != oracle {expected.dtype}"
        same = np.array_equal(data, expected)
    elif data.dtype.kind == "f":
        same = np.array_equal(data, expected.astype(data.dtype), equal_nan=True)
    else:
        same = np.array_equal(data.astype(np.float64), expected)
    if same:
        return None
    wrong = int(np.count_nonzero(data.astype(np.float64) != expected.astype(np.float64)))
    return f"{wrong} of {data.size} pixels differ from the oracle"


def judge(request: dict) -> tuple[str, str]:
    """``(verdict, detail)`` for one file: read it, then compare with the oracle."""
    from fuzz.files import ANSWER, ERROR
    from fuzz.framework import CLEAR_ERROR, FAILURE, RIGHT_ANSWER
    from fuzz.oracles import dicom_expected, png_expected
    from napari_xray.errors import XrayReadError
    from napari_xray.io.read import read_xray

    path = Path(request["path"])
    expect = request["expect"]
    try:
        data = read_xray(path)
    except XrayReadError as error:
        message = str(error)
        if path.name not in message:
            return FAILURE, f"the error does not name the file: {message}"
        if "unexpectedly" in message:  # read.py's safety net: a failure no check foresaw
            return FAILURE, message
        if expect == ANSWER:
            return FAILURE, f"an intact image was refused: {message}"
        return CLEAR_ERROR, message
    except MemoryError:
        return FAILURE, "MemoryError: the read went over the memory cap"
    except Exception as error:
        return FAILURE, f"{type(error).__name__}: {error}"
    if expect == ERROR:
        return FAILURE, f"pixels {data.shape} {data.dtype} returned for damaged image data"
    oracle_path = Path(request["oracle_path"])
    if request["kind"] == "png":
        expected = png_expected(oracle_path.read_bytes())
    else:
        expected = dicom_expected(oracle_path)
    if expected is None:
        return FAILURE, "pixels returned, but the independent decoder finds the file damaged"
    if isinstance(expected, str):
        return FAILURE, "pixels returned that the independent decoder cannot check"
    wrong = _same_pixels(request["kind"], data, expected)
    if wrong is not None:
        return FAILURE, wrong
    return RIGHT_ANSWER, ""


def main() -> None:
    """Cap the address space, then answer requests until stdin closes."""
    cap = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    warnings.simplefilter("ignore")
    import napari_xray.io.read  # noqa: F401 - import before the first case is timed

    for line in sys.stdin:
        request = json.loads(line)
        start = time.perf_counter()
        try:
            verdict, detail = judge(request)
        except MemoryError:
            verdict, detail = "failure", "MemoryError in the oracle: over the memory cap"
        seconds = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        reply = {"verdict": verdict, "detail": detail[:500], "seconds": seconds, "max_rss_mb": rss}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
