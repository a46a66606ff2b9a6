"""The edge filters and masks of the X-ray tutorial: pure NumPy in, NumPy out.

Every filter here

* works **per frame**: a 2D image ``(H, W)`` or a stack ``(N, H, W)`` of separate
  radiographs; a stack's result equals the stack of its frames' results and no
  filter ever mixes neighbouring frames;
* computes in **float32** and returns float32 (masks: ``bool`` or the input
  dtype), so uint8 never wraps around and nothing is float64;
* matches ``scipy.ndimage`` on the float64 frame (mode ``"reflect"``, truncate
  4.0) within 1e-4 of the frame's result range; the fast path uses OpenCV with
  SciPy's own kernels and ``BORDER_REFLECT`` (the same border rule);
* never modifies its input, and accepts views, non-contiguous, Fortran-ordered
  and big-endian arrays;
* rejects what it cannot filter with a ``ValueError`` that says what to pass.

Frames of a stack run in parallel threads (OpenCV and SciPy release the GIL).
Each filter is a *frame plan* (:class:`~napari_xray.engine._frames.FramePlan`):
the checked image and the function that fills one output frame;
:func:`frame_plan` gives the plan of any public filter, which is how
:mod:`napari_xray.engine.pipeline` runs several filters in one pass.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from napari_xray.engine._canny import canny_frame
from napari_xray.engine._checks import MAX_SIGMA, check_image, check_sigma, check_threshold
from napari_xray.engine._frames import FramePlan, run_plan, scratch
from napari_xray.engine._kernels import (
    DIFF,
    PREWITT_SMOOTH,
    SOBEL_SMOOTH,
    as_opencv_input,
    dtype_max,
    fourier_smooth_frame,
    frame_offset,
    gaussian_kernel,
    gaussian_laplace_of_one,
    gradient_magnitude,
    normalize_in_place,
    separable,
    smooth_columns_in_fourier,
    smooth_rows_in_fourier,
    to_float32,
)

__all__ = [
    "MAX_SIGMA",
    "canny",
    "fourier_prewitt",
    "frame_plan",
    "gaussian_gradient_magnitude",
    "laplace_of_gaussian",
    "normalize",
    "sobel_magnitude",
    "threshold_mask",
]

# Rough cost of each plan in milliseconds per megapixel on one core; the pipeline
# starts the most expensive tasks first so that the threads finish together.
_SEPARABLE_TAP_COST = 0.055
_MAGNITUDE_COST = 0.6


def _separable_cost(*kernels) -> float:
    return _SEPARABLE_TAP_COST * sum(len(k) for k in kernels)


def laplace_of_gaussian(image, sigma: float = 1.0) -> np.ndarray:
    """Laplacian of Gaussian of each frame, as ``scipy.ndimage.gaussian_laplace``.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
        One radiograph or a stack of separate radiographs; any real dtype.
    sigma : float
        Gaussian standard deviation in pixels, ``MIN_SIGMA`` (0.01) <= sigma <= ``MAX_SIGMA`` (64).

    Returns
    -------
    numpy.ndarray of float32, same shape as ``image``
        Sum of the second Gaussian derivatives along both image axes, filtered
        frame by frame (mode "reflect", truncate 4.0). Unlike SciPy on a uint8
        input, it never wraps around.

    Raises
    ------
    ValueError
        For a bad image (see module docstring) or a sigma out of range.
    """
    return run_plan(_log_plan(image, sigma))


def _log_plan(image, sigma: float = 1.0) -> FramePlan:
    array = check_image(image, limit_magnitude=True)
    sigma = check_sigma(sigma)
    g0, g2 = gaussian_kernel(sigma, 0), gaussian_kernel(sigma, 2)
    # The response to a constant 1 (reflect borders keep it constant): LoG(x + c) = LoG(x) + c·this.
    constant_response = gaussian_laplace_of_one(sigma)

    def frame_log(frame, out):
        # On the whole frame: measured faster than row bands for every radius ≥ 3.
        pixels, offset = as_opencv_input(frame)
        separable(pixels, g2, g0, out)
        np.add(out, separable(pixels, g0, g2, scratch.get("d0", frame.shape)), out=out)
        if offset:
            np.add(out, np.float32(offset * constant_response), out=out)

    return FramePlan(array, frame_log, np.float32, 2 * _separable_cost(g0, g2))


def gaussian_gradient_magnitude(image, sigma: float = 2.0) -> np.ndarray:
    """Gaussian gradient magnitude of each frame, as ``scipy.ndimage.gaussian_gradient_magnitude``.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
    sigma : float
        Gaussian standard deviation in pixels, ``MIN_SIGMA`` (0.01) <= sigma <= ``MAX_SIGMA`` (64).

    Returns
    -------
    numpy.ndarray of float32, same shape as ``image``
        ``hypot`` of the first Gaussian derivatives along both image axes,
        frame by frame (mode "reflect", truncate 4.0).

    Raises
    ------
    ValueError
        For a bad image or a sigma out of range.
    """
    return run_plan(_gradient_plan(image, sigma))


def _gradient_plan(image, sigma: float = 2.0) -> FramePlan:
    array = check_image(image, limit_magnitude=True)
    sigma = check_sigma(sigma)
    g0, g1 = gaussian_kernel(sigma, 0), gaussian_kernel(sigma, 1)

    def frame_gradient(frame, out):
        gradient_magnitude(as_opencv_input(frame)[0], g1, g0, out)

    cost = 2 * _separable_cost(g0, g1) + _MAGNITUDE_COST
    return FramePlan(array, frame_gradient, np.float32, cost)


def sobel_magnitude(image, normalize: bool = True) -> np.ndarray:
    """Sobel gradient magnitude of each frame: ``hypot(sobel(axis=0), sobel(axis=1))``.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
    normalize : bool
        If true (the tutorial's choice), each frame is mapped to 0..255 with
        ``255 * (x - min) / (max - min)``; a constant frame gives zeros.

    Returns
    -------
    numpy.ndarray of float32, same shape as ``image``
        Computed in float32, so it is the true magnitude (up to 4·√2 times the
        input range), not the tutorial's uint8 wrap-around "emboss".

    Raises
    ------
    ValueError
        For a bad image.
    """
    return run_plan(_sobel_plan(image, normalize))


def _sobel_plan(image, normalize: bool = True) -> FramePlan:
    array = check_image(image, limit_magnitude=True)

    def frame_sobel(frame, out):
        extremes = gradient_magnitude(
            as_opencv_input(frame)[0], DIFF, SOBEL_SMOOTH, out, extremes=normalize
        )
        if normalize:
            normalize_in_place(out, extremes)

    cost = 2 * _separable_cost(DIFF, SOBEL_SMOOTH) + 2 * _MAGNITUDE_COST
    return FramePlan(array, frame_sobel, np.float32, cost)


def fourier_prewitt(image, sigma: float = 1.0, normalize: bool = True) -> np.ndarray:
    """Fourier-domain Gaussian smoothing, then the Prewitt gradient magnitude, per frame.

    This is the tutorial's "Canny" step. The tutorial hands the raw
    image to ``ndimage.fourier_gaussian``, which expects a *spectrum*; applied to
    pixels it only multiplies them by a smooth ~1 % vignette, so the tutorial's
    "smoothing" does nothing useful. Here each frame is transformed (``rfft2``),
    multiplied by the Gaussian's transfer function (``fourier_gaussian`` with
    ``n`` = width), transformed back (``irfft2``) and then differentiated with
    ``hypot(prewitt(axis=0), prewitt(axis=1))`` (mode "reflect").

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
    sigma : float
        Gaussian standard deviation in pixels, ``MIN_SIGMA`` (0.01) <= sigma <= ``MAX_SIGMA`` (64).
    normalize : bool
        Map each frame to 0..255 with ``255 * (x - min) / (max - min)`` (the
        tutorial's formula); a constant frame gives zeros.

    Returns
    -------
    numpy.ndarray of float32, same shape as ``image``

    Raises
    ------
    ValueError
        For a bad image or a sigma out of range.
    """
    return run_plan(_fourier_prewitt_plan(image, sigma, normalize))


def _fourier_prewitt_plan(image, sigma: float = 1.0, normalize: bool = True) -> FramePlan:
    array = check_image(image, limit_magnitude=True)
    sigma = check_sigma(sigma)

    def frame_fourier_prewitt(frame, out):
        if min(frame.shape) < 8:
            smoothed = fourier_smooth_frame(frame, sigma)
            extremes = gradient_magnitude(smoothed, DIFF, PREWITT_SMOOTH, out, extremes=normalize)
        else:
            # Columns on the whole frame; then rows band by band, each band's
            # smoothed rows going straight into the Prewitt derivatives.
            columns = smooth_columns_in_fourier(frame, sigma)

            def smoothed_rows(top, bottom):
                band = scratch.get("smooth-band", (bottom - top, frame.shape[1]))
                return smooth_rows_in_fourier(columns[top:bottom], sigma, band)

            extremes = gradient_magnitude(
                frame, DIFF, PREWITT_SMOOTH, out, rows_of=smoothed_rows, extremes=normalize
            )
        if normalize:
            normalize_in_place(out, extremes)

    return FramePlan(array, frame_fourier_prewitt, np.float32, 7.0)


def canny(
    image,
    sigma: float = 2.0,
    low_threshold: float | None = None,
    high_threshold: float | None = None,
) -> np.ndarray:
    """Canny edges of each frame: smoothing, Sobel gradient, non-maximum suppression, hysteresis.

    Follows ``skimage.feature.canny`` and its parameter conventions: the frame
    is smoothed with a Gaussian of ``sigma`` (mode "reflect"), differentiated
    with Sobel kernels, thinned by non-maximum suppression along the gradient
    direction and linked by hysteresis with 8-connectivity; the one-pixel
    border is never an edge. Thresholds apply to the gradient magnitude, in the
    input's intensity units (as skimage); the defaults are 10 % and 20 % of the
    dtype's maximum (255 for uint8, 1.0 for float images).

    The smoothing uses SciPy's "reflect" border, so the reference is
    ``skimage.feature.canny(image, sigma, ..., mode="reflect")``; on the
    tutorial's frames the two agree to a Dice coefficient above 0.999 (float32
    here, float64 there). Canny on 8-bit data has exact ties on flat ridges, so
    even skimage's own "constant" and "reflect" modes differ noticeably.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
    sigma : float
        Gaussian standard deviation in pixels, ``MIN_SIGMA`` (0.01) <= sigma <= ``MAX_SIGMA`` (64).
    low_threshold, high_threshold : float or None
        Hysteresis thresholds on the gradient magnitude; ``low <= high``.

    Returns
    -------
    numpy.ndarray of bool, same shape as ``image``
        One-pixel-thin edges.

    Raises
    ------
    ValueError
        For a bad image, a sigma out of range, negative thresholds or
        ``low_threshold > high_threshold``.
    """
    return run_plan(_canny_plan(image, sigma, low_threshold, high_threshold))


def _canny_plan(image, sigma=2.0, low_threshold=None, high_threshold=None) -> FramePlan:
    array = check_image(image, limit_magnitude=True)
    sigma = check_sigma(sigma)
    intensity_max = dtype_max(array.dtype)
    low = (
        0.1 * intensity_max
        if low_threshold is None
        else check_threshold(low_threshold, "low_threshold")
    )
    high = (
        0.2 * intensity_max
        if high_threshold is None
        else check_threshold(high_threshold, "high_threshold")
    )
    if low < 0 or high < 0:
        raise ValueError("low_threshold and high_threshold must not be negative")
    if low > high:
        raise ValueError(
            f"low_threshold ({low:g}) is above high_threshold ({high:g}); "
            "pass low_threshold <= high_threshold"
        )
    g0 = gaussian_kernel(sigma, 0)

    def frame_canny(frame, out):
        canny_frame(frame, sigma, low, high, out)

    cost = _separable_cost(g0, g0) + 2 * _separable_cost(DIFF, SOBEL_SMOOTH) + 3.0
    return FramePlan(array, frame_canny, np.bool_, cost)


def threshold_mask(image, threshold: float = 150, mode: str = "keep") -> np.ndarray:
    """The tutorial's ``np.where`` masks: keep pixels above ``threshold``.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
    threshold : float
        Pixels strictly greater than it are kept.
    mode : {"keep", "binary"}
        ``"keep"``: ``np.where(image > threshold, image, 0)`` in the input dtype;
        ``"binary"``: the bool mask ``image > threshold``.

    Returns
    -------
    numpy.ndarray, same shape as ``image``; the input dtype for "keep", bool for "binary".

    Raises
    ------
    ValueError
        For a bad image, a non-finite threshold or an unknown mode.
    """
    return run_plan(_mask_plan(image, threshold, mode))


# Dtypes cv2.threshold(THRESH_TOZERO) takes; integer depths compare with floor(t),
# which is the same test as ``> t`` for integer pixels.
_CV_THRESHOLD = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def _mask_plan(image, threshold: float = 150, mode: str = "keep") -> FramePlan:
    array = check_image(image)
    threshold = check_threshold(threshold, "threshold")
    if mode not in ("keep", "binary"):
        raise ValueError(f"mode must be 'keep' or 'binary', got {mode!r}")
    native = array.dtype.newbyteorder("=")
    # Integer pixels of up to 32 bits (exact in float64, as NumPy compares them)
    # are above t exactly when they are above floor(t): compare in their own dtype.
    integer = native.kind in "iu"
    bound = None
    if integer:
        limits = np.iinfo(native)
        if threshold >= limits.max:
            bound = "none"
        elif threshold < limits.min:
            bound = "all"
    if mode == "binary":
        floor = native.type(math.floor(threshold)) if integer and bound is None else threshold

        def frame_binary(frame, out):
            if bound is not None:
                out.fill(bound == "all")
            elif integer and native.itemsize <= 4:
                np.greater(frame, floor, out=out)
            else:
                np.greater(frame, threshold, out=out)

        return FramePlan(array, frame_binary, np.bool_, 0.1)

    def frame_keep(frame, out):
        if bound is not None:
            out[...] = 0 if bound == "none" else frame
        elif native.type in _CV_THRESHOLD:
            pixels = np.ascontiguousarray(frame, dtype=native)
            cv2.threshold(pixels, threshold, 0, cv2.THRESH_TOZERO, dst=out)
        else:
            out.fill(0)
            np.copyto(out, frame, where=frame > threshold)

    return FramePlan(array, frame_keep, native, 0.1)


def normalize(image) -> np.ndarray:
    """Map each frame to 0..255 with the tutorial's ``255 * (x - min) / (max - min)``.

    Returns
    -------
    numpy.ndarray of float32, same shape as ``image``
        A constant frame gives zeros (never NaN or inf).

    Raises
    ------
    ValueError
        For a bad image.
    """
    array = check_image(image)

    def frame_normalize(frame, out):
        normalize_in_place(to_float32(frame, out, frame_offset(frame)))

    return run_plan(FramePlan(array, frame_normalize, np.float32, 0.5))


_PLANS = {
    laplace_of_gaussian: _log_plan,
    gaussian_gradient_magnitude: _gradient_plan,
    sobel_magnitude: _sobel_plan,
    fourier_prewitt: _fourier_prewitt_plan,
    canny: _canny_plan,
    threshold_mask: _mask_plan,
}


def frame_plan(function, image, **params) -> FramePlan:
    """The frame plan of the public filter ``function`` applied to ``image`` with ``params``.

    Checks the image and parameters exactly as calling ``function`` would;
    ``run_plan(frame_plan(f, image, **p))`` equals ``f(image, **p)`` bit for bit.

    Raises
    ------
    KeyError
        If ``function`` is not one of this module's filters.
    ValueError
        For a bad image or parameter (see each filter).
    """
    try:
        planner = _PLANS[function]
    except KeyError:
        raise KeyError(f"{function!r} is not a filter of napari_xray.engine.filters") from None
    return planner(image, **params)
