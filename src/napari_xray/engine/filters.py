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
"""

from __future__ import annotations

import cv2
import numpy as np

from napari_xray.engine._checks import MAX_SIGMA, check_image, check_sigma, check_threshold
from napari_xray.engine._frames import map_frames, scratch
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
    suppress_and_link,
    to_float32,
)

__all__ = [
    "MAX_SIGMA",
    "canny",
    "fourier_prewitt",
    "gaussian_gradient_magnitude",
    "laplace_of_gaussian",
    "normalize",
    "sobel_magnitude",
    "threshold_mask",
]


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
    array = check_image(image, limit_magnitude=True)
    sigma = check_sigma(sigma)
    g0, g2 = gaussian_kernel(sigma, 0), gaussian_kernel(sigma, 2)

    # The response to a constant 1 (reflect borders keep it constant): LoG(x + c) = LoG(x) + c·this.
    constant_response = gaussian_laplace_of_one(sigma)

    def frame_log(frame, out):
        pixels, offset = as_opencv_input(frame)
        separable(pixels, g2, g0, out)
        np.add(out, separable(pixels, g0, g2, scratch.get("d0", frame.shape)), out=out)
        if offset:
            np.add(out, np.float32(offset * constant_response), out=out)

    return map_frames(frame_log, array, np.float32)


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
    array = check_image(image, limit_magnitude=True)
    sigma = check_sigma(sigma)
    g0, g1 = gaussian_kernel(sigma, 0), gaussian_kernel(sigma, 1)

    def frame_gradient(frame, out):
        gradient_magnitude(as_opencv_input(frame)[0], g1, g0, out)

    return map_frames(frame_gradient, array, np.float32)


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
    array = check_image(image, limit_magnitude=True)

    def frame_sobel(frame, out):
        gradient_magnitude(as_opencv_input(frame)[0], DIFF, SOBEL_SMOOTH, out)
        if normalize:
            normalize_in_place(out)

    return map_frames(frame_sobel, array, np.float32)


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
    array = check_image(image, limit_magnitude=True)
    sigma = check_sigma(sigma)

    def frame_fourier_prewitt(frame, out):
        smoothed = fourier_smooth_frame(frame, sigma)
        gradient_magnitude(smoothed, DIFF, PREWITT_SMOOTH, out)
        if normalize:
            normalize_in_place(out)

    return map_frames(frame_fourier_prewitt, array, np.float32)


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
        if min(frame.shape) < 3:
            out.fill(False)
            return
        pixels = as_opencv_input(frame)[0]
        smoothed = separable(pixels, g0, g0, scratch.get("smooth", frame.shape))
        d_rows = separable(smoothed, DIFF, SOBEL_SMOOTH, scratch.get("d0", frame.shape))
        d_cols = separable(smoothed, SOBEL_SMOOTH, DIFF, scratch.get("d1", frame.shape))
        suppress_and_link(d_rows, d_cols, low, high, out)

    return map_frames(frame_canny, array, bool)


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
    array = check_image(image)
    threshold = check_threshold(threshold, "threshold")
    if mode not in ("keep", "binary"):
        raise ValueError(f"mode must be 'keep' or 'binary', got {mode!r}")
    if mode == "binary":
        return array > threshold
    if np.issubdtype(array.dtype, np.integer):
        limits = np.iinfo(array.dtype)
        if threshold >= limits.max:
            return np.zeros(array.shape, dtype=array.dtype.newbyteorder("="))
        if threshold < limits.min:
            return array.astype(array.dtype.newbyteorder("="), copy=True)
    if array.dtype.type in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        # cv2.threshold(TOZERO) is np.where(x > t, x, 0) at memory speed: integer
        # depths compare with floor(t), which is the same test for integer pixels.
        frames = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
        flat = frames.reshape(-1, frames.shape[-1])
        kept = cv2.threshold(flat, threshold, 0, cv2.THRESH_TOZERO)[1]
        return kept.reshape(array.shape)
    above = array > threshold
    return np.where(above, array, np.zeros((), dtype=array.dtype))


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

    return map_frames(frame_normalize, array, np.float32)
