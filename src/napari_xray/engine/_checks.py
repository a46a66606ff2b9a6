"""Validation of the engine's inputs: images, sigmas and thresholds."""

from __future__ import annotations

import math

import numpy as np

#: Largest Gaussian sigma (pixels) the filters accept; the kernel radius is 4·sigma.
MAX_SIGMA = 64.0
#: Smallest Gaussian sigma (pixels): below it the Laplacian's weights (1/sigma²) explode.
MIN_SIGMA = 0.01
#: Largest magnitude of a pixel the edge filters accept: their float32 results and the
#: squares inside a gradient magnitude must stay finite (float32 ends at 3.4e38).
MAX_MAGNITUDE = 1e18


def check_image(image, name: str = "image", *, limit_magnitude: bool = False) -> np.ndarray:
    """Return ``image`` as an ndarray of 2 or 3 dims with a filterable dtype, or raise.

    Float images must be finite. With ``limit_magnitude`` (the edge filters),
    every pixel must also lie within ±``MAX_MAGNITUDE``.
    """
    array = np.asarray(image)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} has dtype {array.dtype}; pass a numeric (integer or float) image")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{name} is complex; pass a real image (e.g. np.abs(image))")
    if array.ndim == 3 and array.shape[-1] in (3, 4) and array.shape[-2] > 4:
        raise ValueError(
            f"{name} of shape {array.shape} looks like an RGB(A) picture; convert it to "
            "grayscale first (napari_xray.read_xray does this for PNG files)"
        )
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{name} has {array.ndim} dimension(s), shape {array.shape}; pass one 2D image "
            "(H, W) or a stack of 2D frames (N, H, W)"
        )
    if array.size == 0:
        raise ValueError(f"{name} of shape {array.shape} is empty; pass at least one pixel")
    wide_integer = array.dtype.kind in "iu" and array.dtype.itemsize == 8
    if array.dtype.kind == "f" or (limit_magnitude and wide_integer):
        # min and max propagate NaN, and are cheaper than a full isfinite mask.
        low, high = float(array.min()), float(array.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(
                f"{name} contains NaN or infinite values; replace them first, e.g. "
                "np.nan_to_num(image, nan=0.0, posinf=..., neginf=...)"
            )
        if limit_magnitude and max(-low, high) > MAX_MAGNITUDE:
            raise ValueError(
                f"{name} holds values from {low:.3g} to {high:.3g}, beyond the "
                f"±{MAX_MAGNITUDE:.0e} that float32 edge filters can hold; rescale it "
                "first, e.g. image / np.abs(image).max()"
            )
    return array


def check_sigma(sigma, name: str = "sigma") -> float:
    """Return sigma as a float in [MIN_SIGMA, MAX_SIGMA], or raise a ValueError saying why."""
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of pixels, got {sigma!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of pixels, got {sigma!r}")
    if value < MIN_SIGMA:
        raise ValueError(f"{name}={value:g} is below {MIN_SIGMA:g} pixels; pass a larger sigma")
    if value > MAX_SIGMA:
        raise ValueError(
            f"{name}={value:g} is larger than {MAX_SIGMA:g} pixels; pass a smaller sigma "
            "(or downsample the image first)"
        )
    return value


def check_threshold(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number
