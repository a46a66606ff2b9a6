"""Validation of the engine's inputs: images, sigmas and thresholds."""

from __future__ import annotations

import math

import numpy as np

#: Largest Gaussian sigma (pixels) the filters accept; the kernel radius is 4·sigma.
MAX_SIGMA = 64.0


def check_image(image, name: str = "image") -> np.ndarray:
    """Return ``image`` as an ndarray of 2 or 3 dims with a filterable dtype, or raise."""
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
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(
            f"{name} contains NaN or infinite values; replace them first, e.g. "
            "np.nan_to_num(image, nan=0.0, posinf=..., neginf=...)"
        )
    return array


def check_sigma(sigma, name: str = "sigma") -> float:
    """Return sigma as a float in (0, MAX_SIGMA], or raise a ValueError saying what to pass."""
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of pixels, got {sigma!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of pixels, got {sigma!r}")
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
