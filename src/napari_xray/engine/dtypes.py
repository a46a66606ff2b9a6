"""Casting results to the dtype they are stored in: exactly as NumPy does, faster."""

from __future__ import annotations

import numpy as np

__all__ = ["FLOAT16_MAX", "to_float16"]

#: The largest finite float16.
FLOAT16_MAX = float(np.finfo(np.float16).max)
#: Magnitudes from here on round to infinity in float16 (below it, to ±65,504 at most).
_FLOAT16_OVERFLOW = 65520.0
#: The lowest float32 that does not round to -inf (checkRange's lower bound is inclusive).
_LOWEST_SAFE = float(np.nextafter(np.float32(-_FLOAT16_OVERFLOW), np.float32(0)))


def to_float16(values: np.ndarray) -> np.ndarray:
    """``values`` as float16, bit for bit equal to ``values.astype(np.float16)``.

    float32 arrays are converted by OpenCV (much faster than NumPy's cast;
    ties round to even, subnormals, −0 and NaN as in NumPy); others by NumPy
    (OpenCV rounds float64 twice, through float32). float16 keeps 11
    significant bits: each value is within 2⁻¹¹ (4.9e-4) of itself, relative.

    Raises
    ------
    ValueError
        A finite value would become infinite (magnitude ≥ 65,520; float16's
        largest is 65,504); the message gives the largest magnitude.
    """
    array = np.asarray(values)
    converted_by_opencv = (
        array.dtype == np.float32 and array.ndim in (2, 3) and array.size > 0
        and array.flags.c_contiguous
    )
    if converted_by_opencv:
        import cv2

        plane = array.reshape(-1, array.shape[-1])
        # All finite and inside (-65520, 65520)? NaN and inf fail it too (cv2.norm would
        # not do: on x86 a NaN can hide a larger value from its running maximum).
        in_range, _ = cv2.checkRange(plane, True, minVal=_LOWEST_SAFE, maxVal=_FLOAT16_OVERFLOW)
        if not in_range:
            _check_finite_values(plane)
        return _opencv_float16(cv2, plane).reshape(array.shape)
    if array.dtype.kind in "fiu" and array.size:
        _check_finite_values(array)
    return array.astype(np.float16)


def _check_finite_values(array: np.ndarray) -> None:
    """Raise ValueError when a finite value of ``array`` would become infinite in float16."""
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    if finite.size:
        largest = max(abs(float(finite.max())), abs(float(finite.min())))
        if largest >= _FLOAT16_OVERFLOW:
            raise ValueError(_beyond_range(largest))


def _opencv_float16(cv2, plane: np.ndarray) -> np.ndarray:
    """OpenCV's float32 → float16 conversion of a 2-D array."""
    if hasattr(cv2, "convertFp16"):  # OpenCV 4: the float16 bits, typed int16
        return cv2.convertFp16(plane).view(np.float16)
    return cv2.multiply(plane, 1.0, dtype=cv2.CV_16F)  # OpenCV 5 (convertFp16 is gone)


def _beyond_range(largest: float) -> str:
    return (
        f"values reach {largest:,.6g}, beyond float16's range (±{FLOAT16_MAX:,.0f}); "
        "store them as float32"
    )
