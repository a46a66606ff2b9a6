"""The edge filters and masks of the X-ray tutorial, done right: pure NumPy in, NumPy out.

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

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import cv2
import numpy as np
import scipy.fft
from scipy import ndimage

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

#: Largest Gaussian sigma (pixels) the filters accept; the kernel radius is 4·sigma.
MAX_SIGMA = 64.0

# scipy.ndimage's default truncation: the kernel radius is int(truncate * sigma + 0.5).
_TRUNCATE = 4.0
# OpenCV depths that cv2.sepFilter2D reads directly (no float32 copy needed).
_CV_NATIVE = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
_MAX_THREADS = max(1, min(os.cpu_count() or 1, 8))


# --------------------------------------------------------------------------- validation


def _check_image(image, name: str = "image") -> np.ndarray:
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


def _check_sigma(sigma, name: str = "sigma") -> float:
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


def _check_threshold(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


# --------------------------------------------------------------------------- per frame


def _map_frames(
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

    Long-lived threads keep their scratch buffers (see :class:`_Scratch`) from
    call to call; a pool per call would page-fault fresh buffers every time.
    Frame functions never submit to this pool themselves, so it cannot deadlock.
    """
    return ThreadPoolExecutor(max_workers=_MAX_THREADS, thread_name_prefix="napari-xray-frames")


class _Scratch(threading.local):
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


_scratch = _Scratch()


# --------------------------------------------------------------------------- kernels


@lru_cache(maxsize=64)
def _gaussian_kernel(sigma: float, order: int) -> np.ndarray:
    """SciPy's 1D Gaussian (derivative) kernel for correlation, as float32.

    Same radius (``int(4 * sigma + 0.5)``) and normalisation as
    ``scipy.ndimage.gaussian_filter1d``; SciPy *convolves* with its kernel, so the
    odd (first-derivative) kernel is mirrored here for OpenCV's correlation.
    """
    radius = int(_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * (x / sigma) ** 2)
    phi /= phi.sum()
    if order == 0:
        kernel = phi
    elif order == 1:
        kernel = -x / sigma**2 * phi
    elif order == 2:
        kernel = (x**2 / sigma**4 - 1.0 / sigma**2) * phi
    else:  # pragma: no cover - internal use only
        raise ValueError(f"order must be 0, 1 or 2, got {order}")
    if order == 1:
        kernel = kernel[::-1]
    return np.ascontiguousarray(kernel, dtype=np.float32)


_DIFF = np.array([-1.0, 0.0, 1.0], dtype=np.float32)
_SOBEL_SMOOTH = np.array([1.0, 2.0, 1.0], dtype=np.float32)
_PREWITT_SMOOTH = np.array([1.0, 1.0, 1.0], dtype=np.float32)


def _separable(frame, kernel_rows, kernel_cols, out: np.ndarray) -> np.ndarray:
    """Correlate ``frame`` with ``kernel_rows`` along axis 0 and ``kernel_cols`` along axis 1.

    Writes float32 into ``out`` and returns it. Border rule ``cv2.BORDER_REFLECT``
    is scipy.ndimage's ``mode="reflect"``. Frames smaller than a kernel fall back
    to scipy, whose reflection repeats for arbitrarily short axes.
    """
    height, width = frame.shape
    if len(kernel_rows) // 2 >= height or len(kernel_cols) // 2 >= width:
        data = np.asarray(frame, dtype=np.float32)
        rows = ndimage.correlate1d(data, kernel_rows, axis=0, mode="reflect")
        ndimage.correlate1d(rows, kernel_cols, axis=1, mode="reflect", output=out)
        return out
    # OpenCV's kernelX runs along columns (axis 1), kernelY along rows (axis 0).
    cv2.sepFilter2D(
        frame, cv2.CV_32F, kernel_cols, kernel_rows, dst=out, borderType=cv2.BORDER_REFLECT
    )
    return out


def _gradient_magnitude(frame, kernel_diff, kernel_smooth, out: np.ndarray) -> np.ndarray:
    """hypot of the derivatives along both axes (difference ⊗ smoothing kernels) into ``out``.

    NumPy does the squares and root rather than ``cv2.magnitude``, whose last
    bit differs between the main thread and worker threads: a stack's result
    must equal the stack of its frames' results exactly.
    """
    along_rows = _separable(frame, kernel_diff, kernel_smooth, _scratch.get("d0", frame.shape))
    along_cols = _separable(frame, kernel_smooth, kernel_diff, _scratch.get("d1", frame.shape))
    np.multiply(along_rows, along_rows, out=along_rows)
    np.multiply(along_cols, along_cols, out=along_cols)
    np.add(along_rows, along_cols, out=out)
    return np.sqrt(out, out=out)


def _normalize_in_place(frame: np.ndarray) -> np.ndarray:
    """255·(x − min)/(max − min) on a float32 frame, in place; a constant frame gives zeros."""
    low, high = cv2.minMaxLoc(frame)[:2]
    span = high - low
    if not span > 0:
        frame.fill(0)
        return frame
    np.subtract(frame, np.float32(low), out=frame)
    return np.multiply(frame, np.float32(255.0 / span), out=frame)


def _as_opencv_input(frame: np.ndarray) -> np.ndarray:
    """``frame`` as OpenCV reads it: native-endian, C-contiguous, a depth it knows.

    Frames that already are pass through without a copy; others are converted
    into a per-thread float32 buffer.
    """
    if frame.dtype.type in _CV_NATIVE and frame.dtype.isnative and frame.flags.c_contiguous:
        return frame
    if frame.dtype.type in _CV_NATIVE and frame.dtype.isnative:
        return np.ascontiguousarray(frame)
    buffer = _scratch.get("input", frame.shape)
    np.copyto(buffer, frame, casting="unsafe")
    return buffer


# --------------------------------------------------------------------------- filters


def laplace_of_gaussian(image, sigma: float = 1.0) -> np.ndarray:
    """Laplacian of Gaussian of each frame, as ``scipy.ndimage.gaussian_laplace``.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
        One radiograph or a stack of separate radiographs; any real dtype.
    sigma : float
        Gaussian standard deviation in pixels, 0 < sigma <= ``MAX_SIGMA``.

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
    array = _check_image(image)
    sigma = _check_sigma(sigma)
    g0, g2 = _gaussian_kernel(sigma, 0), _gaussian_kernel(sigma, 2)

    def frame_log(frame, out):
        frame = _as_opencv_input(frame)
        _separable(frame, g2, g0, out)
        np.add(out, _separable(frame, g0, g2, _scratch.get("d0", frame.shape)), out=out)

    return _map_frames(frame_log, array, np.float32)


def gaussian_gradient_magnitude(image, sigma: float = 2.0) -> np.ndarray:
    """Gaussian gradient magnitude of each frame, as ``scipy.ndimage.gaussian_gradient_magnitude``.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
    sigma : float
        Gaussian standard deviation in pixels, 0 < sigma <= ``MAX_SIGMA``.

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
    array = _check_image(image)
    sigma = _check_sigma(sigma)
    g0, g1 = _gaussian_kernel(sigma, 0), _gaussian_kernel(sigma, 1)

    def frame_gradient(frame, out):
        _gradient_magnitude(_as_opencv_input(frame), g1, g0, out)

    return _map_frames(frame_gradient, array, np.float32)


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
    array = _check_image(image)

    def frame_sobel(frame, out):
        _gradient_magnitude(_as_opencv_input(frame), _DIFF, _SOBEL_SMOOTH, out)
        if normalize:
            _normalize_in_place(out)

    return _map_frames(frame_sobel, array, np.float32)


@lru_cache(maxsize=32)
def _fourier_gaussian_row_ccs(length: int, sigma: float) -> np.ndarray:
    """``fourier_gaussian``'s 1D transfer function laid out like OpenCV's packed row spectrum.

    ``cv2.dft(..., flags=cv2.DFT_ROWS)`` packs each row's real spectrum as
    ``[Re0, Re1, Im1, Re2, Im2, …]`` (plus ``Re(n/2)`` last for an even length).
    The Gaussian's transfer function is real and even, so both slots of a
    frequency get its value. The inverse DFT's 1/n scale is folded in.
    """
    half = ndimage.fourier_gaussian(np.ones(length // 2 + 1), sigma, n=length) / length
    packed = np.empty(length, dtype=np.float64)
    packed[0] = half[0]
    pairs = (length - 1) // 2
    packed[1 : 2 * pairs + 1 : 2] = half[1 : pairs + 1]
    packed[2 : 2 * pairs + 2 : 2] = half[1 : pairs + 1]
    if length % 2 == 0:
        packed[-1] = half[length // 2]
    return packed.astype(np.float32)


def _smooth_rows_in_fourier(data: np.ndarray, sigma: float, name: str) -> np.ndarray:
    """Fourier-domain Gaussian smoothing of every row of ``data`` (float32, C-contiguous)."""
    spectrum = cv2.dft(data, dst=_scratch.get(f"{name}-spectrum", data.shape), flags=cv2.DFT_ROWS)
    np.multiply(spectrum, _fourier_gaussian_row_ccs(data.shape[1], sigma), out=spectrum)
    return cv2.idft(
        spectrum,
        dst=_scratch.get(f"{name}-rows", data.shape),
        flags=cv2.DFT_ROWS | cv2.DFT_REAL_OUTPUT,
    )


def _fourier_smooth_frame(frame: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of one frame in the Fourier domain, as C-contiguous float32.

    FFT → ``scipy.ndimage.fourier_gaussian`` on the spectrum (``n`` = frame width
    for the real FFT) → inverse FFT. Equals ``gaussian_filter(frame, sigma,
    mode="wrap")`` up to the Gaussian's truncation: Fourier filtering treats the
    frame as periodic.

    The Gaussian's transfer function is separable, so multiplying the 2D
    spectrum by it is the same linear operator as doing so along the rows and
    then along the columns; OpenCV's packed 1D real DFTs (columns via a
    transpose) do that about 1.5× faster than a 2D transform. Tiny frames use
    ``scipy.fft`` directly.
    """
    data = _scratch.get("input", frame.shape)
    np.copyto(data, frame, casting="unsafe")
    if min(data.shape) < 8:
        spectrum = ndimage.fourier_gaussian(scipy.fft.rfft2(data), sigma, n=data.shape[-1])
        return np.ascontiguousarray(scipy.fft.irfft2(spectrum, s=data.shape), np.float32)
    along_rows = _smooth_rows_in_fourier(data, sigma, "rows")
    transposed = cv2.transpose(along_rows, dst=_scratch.get("transposed", data.shape[::-1]))
    along_both = _smooth_rows_in_fourier(transposed, sigma, "columns")
    return cv2.transpose(along_both, dst=_scratch.get("smooth", data.shape))


def fourier_prewitt(image, sigma: float = 1.0, normalize: bool = True) -> np.ndarray:
    """Fourier-domain Gaussian smoothing, then the Prewitt gradient magnitude, per frame.

    This is the tutorial's "Canny" step done right. The tutorial hands the raw
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
        Gaussian standard deviation in pixels, 0 < sigma <= ``MAX_SIGMA``.
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
    array = _check_image(image)
    sigma = _check_sigma(sigma)

    def frame_fourier_prewitt(frame, out):
        smoothed = _fourier_smooth_frame(frame, sigma)
        _gradient_magnitude(smoothed, _DIFF, _PREWITT_SMOOTH, out)
        if normalize:
            _normalize_in_place(out)

    return _map_frames(frame_fourier_prewitt, array, np.float32)


def _dtype_max(dtype: np.dtype) -> float:
    """The intensity that skimage maps to 1.0: the integer type's max, or 1.0 for floats."""
    if dtype.kind == "b":
        return 1.0
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return 1.0


def _suppress_and_link(d_rows, d_cols, low: float, high: float, out: np.ndarray) -> None:
    """Canny's non-maximum suppression (bilinear, as skimage) and hysteresis on one frame.

    A pixel whose gradient magnitude is at least ``low`` survives when it is not
    smaller than the magnitude interpolated one step forward and one step back
    along its gradient direction (between the axis neighbour and the diagonal
    neighbour, weighted by the gradient's slope). Survivors are linked into
    8-connected segments; a segment is kept when any pixel of it reaches
    ``high``. The one-pixel border is never an edge. Writes the bool edges
    into ``out`` (C-contiguous, the frame's shape).
    """
    height, width = d_rows.shape
    magnitude = np.multiply(d_rows, d_rows, out=_scratch.get("magnitude", d_rows.shape))
    cols_squared = np.multiply(d_cols, d_cols, out=_scratch.get("squared", d_rows.shape))
    np.sqrt(np.add(magnitude, cols_squared, out=magnitude), out=magnitude)
    candidates = magnitude >= max(low, 1e-14)
    candidates[[0, -1], :] = False
    candidates[:, [0, -1]] = False
    index = np.flatnonzero(candidates)
    flat = magnitude.ravel()
    grad_rows, grad_cols, value = d_rows.ravel()[index], d_cols.ravel()[index], flat[index]
    abs_rows, abs_cols = np.abs(grad_rows), np.abs(grad_cols)
    # Steps in flat indices: one row is `width` elements.
    step_row = np.where(grad_rows > 0, width, -width)
    step_col = np.where(grad_cols > 0, 1, -1)
    mostly_vertical = abs_rows > abs_cols
    axis_step = np.where(mostly_vertical, step_row, step_col)
    diagonal_step = step_row + step_col
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(mostly_vertical, abs_cols / abs_rows, abs_rows / abs_cols)
    ahead = flat[index + axis_step] * (1 - slope) + flat[index + diagonal_step] * slope
    behind = flat[index - axis_step] * (1 - slope) + flat[index - diagonal_step] * slope
    is_maximum = (ahead <= value) & (behind <= value)
    thin_index = index[is_maximum]
    thin = np.zeros(height * width, dtype=np.uint8)
    thin[thin_index] = 1
    count, labels = cv2.connectedComponents(thin.reshape(height, width), connectivity=8)
    labels = labels.ravel()
    keep = np.zeros(count, dtype=bool)
    keep[labels[index[is_maximum & (value >= high)]]] = True
    keep[0] = False
    # Only thinned pixels can be edges: look up their segments, not the whole frame.
    out.fill(False)
    out.ravel()[thin_index] = keep[labels[thin_index]]


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
        Gaussian standard deviation in pixels, 0 < sigma <= ``MAX_SIGMA``.
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
    array = _check_image(image)
    sigma = _check_sigma(sigma)
    dtype_max = _dtype_max(array.dtype)
    low = (
        0.1 * dtype_max
        if low_threshold is None
        else _check_threshold(low_threshold, "low_threshold")
    )
    high = (
        0.2 * dtype_max
        if high_threshold is None
        else _check_threshold(high_threshold, "high_threshold")
    )
    if low < 0 or high < 0:
        raise ValueError("low_threshold and high_threshold must not be negative")
    if low > high:
        raise ValueError(
            f"low_threshold ({low:g}) is above high_threshold ({high:g}); "
            "pass low_threshold <= high_threshold"
        )
    g0 = _gaussian_kernel(sigma, 0)

    def frame_canny(frame, out):
        if min(frame.shape) < 3:
            out.fill(False)
            return
        smoothed = _separable(_as_opencv_input(frame), g0, g0, _scratch.get("smooth", frame.shape))
        d_rows = _separable(smoothed, _DIFF, _SOBEL_SMOOTH, _scratch.get("d0", frame.shape))
        d_cols = _separable(smoothed, _SOBEL_SMOOTH, _DIFF, _scratch.get("d1", frame.shape))
        _suppress_and_link(d_rows, d_cols, low, high, out)

    return _map_frames(frame_canny, array, bool)


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
    array = _check_image(image)
    threshold = _check_threshold(threshold, "threshold")
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
    array = _check_image(image)

    def frame_normalize(frame, out):
        np.copyto(out, frame, casting="unsafe")
        _normalize_in_place(out)

    return _map_frames(frame_normalize, array, np.float32)
