"""Summary statistics and intensity histograms of X-ray images (pure NumPy/SciPy)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["image_statistics", "intensity_histogram"]


def _checked(image) -> np.ndarray:
    """``image`` as an ndarray of real numbers without NaN/inf, or a ValueError saying why."""
    array = np.asarray(image)
    if array.size == 0:
        raise ValueError("image is empty; pass an array with at least one pixel")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
        raise ValueError(f"image has dtype {array.dtype}; pass a real-valued image")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(
            "image contains NaN or infinite values; replace them first, e.g. with np.nan_to_num"
        )
    return array


def image_statistics(image) -> dict:
    """Summary statistics of an image or stack, as the tutorial prints them.

    Parameters
    ----------
    image : array_like
        Any real-valued array (a frame, a stack, a filter result).

    Returns
    -------
    dict
        ``dtype`` (str), ``shape`` (tuple), ``size``, ``min``, ``max``, ``mean``,
        ``median`` and ``std`` (population standard deviation) as plain Python
        numbers. ``mean`` is NumPy's float64 mean, so for ``00000011_001.png`` the
        figures are exactly the tutorial's: uint8, 0, 255, 172.52233219146729, 195.0.

    Raises
    ------
    ValueError
        For an empty, complex or non-numeric array, or one holding NaN/inf.
    """
    array = _checked(image)
    values = array.astype(np.uint8) if array.dtype == bool else array
    low, high = values.min(), values.max()
    return {
        "dtype": str(array.dtype),
        "shape": tuple(int(n) for n in array.shape),
        "size": int(array.size),
        "min": low.item(),
        "max": high.item(),
        "mean": float(np.mean(values)),
        "median": float(np.median(values)),
        "std": float(np.std(values)),
    }


def intensity_histogram(image, bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of pixel intensities over the image's own range, as the tutorial draws it.

    Uses ``scipy.ndimage.histogram(image, min=image.min(), max=image.max(),
    bins=bins)``, exactly the tutorial's call.

    Returns
    -------
    counts : numpy.ndarray of int, shape (bins,)
    edges : numpy.ndarray of float64, shape (bins + 1,)
        Bin edges from ``min`` to ``max``.

    Raises
    ------
    ValueError
        For a bad image (see :func:`image_statistics`) or ``bins < 1``.
    """
    array = _checked(image)
    if int(bins) < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    low, high = float(array.min()), float(array.max())
    if high == low:
        # ndimage.histogram divides by (max - min); a constant image is one full bin.
        counts = np.zeros(int(bins), dtype=np.int64)
        counts[0] = array.size
        return counts, np.linspace(low, low + 1.0, int(bins) + 1)
    counts = ndimage.histogram(array, low, high, int(bins))
    return np.asarray(counts, dtype=np.int64), np.linspace(low, high, int(bins) + 1)
