"""The building blocks of the filters: SciPy's Gaussian kernels, separable correlation
with OpenCV, gradient magnitudes, min-max normalisation, Fourier smoothing and
Canny's non-maximum suppression with hysteresis. Each works on one 2D frame."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import scipy.fft
from scipy import ndimage

from napari_xray.engine._frames import scratch

# scipy.ndimage's default truncation: the kernel radius is int(truncate * sigma + 0.5).
_TRUNCATE = 4.0
# Depths that cv2.sepFilter2D reads directly into a float32 output, on OpenCV 4 and 5
# alike (OpenCV 5 refuses float64 input with float32 output).
_CV_NATIVE = (np.uint8, np.uint16, np.int16, np.float32)
# Dtypes all of whose values float32 holds exactly: converted without an offset.
_EXACT_IN_FLOAT32 = (np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.float16, np.float32)


def _gaussian_kernel64(sigma: float, order: int) -> np.ndarray:
    """SciPy's 1D Gaussian (derivative) kernel, float64, as ``gaussian_filter1d`` convolves."""
    radius = int(_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * (x / sigma) ** 2)
    phi /= phi.sum()
    if order == 0:
        return phi
    if order == 1:
        return -x / sigma**2 * phi
    if order == 2:
        return (x**2 / sigma**4 - 1.0 / sigma**2) * phi
    raise ValueError(f"order must be 0, 1 or 2, got {order}")  # pragma: no cover


@lru_cache(maxsize=64)
def gaussian_kernel(sigma: float, order: int) -> np.ndarray:
    """SciPy's 1D Gaussian (derivative) kernel for correlation, as float32.

    Same radius (``int(4 * sigma + 0.5)``) and normalisation as
    ``scipy.ndimage.gaussian_filter1d``; SciPy *convolves* with its kernel, so the
    odd (first-derivative) kernel is mirrored here for OpenCV's correlation.
    """
    kernel = _gaussian_kernel64(sigma, order)
    if order == 1:
        kernel = kernel[::-1]
    return np.ascontiguousarray(kernel, dtype=np.float32)


def gaussian_laplace_of_one(sigma: float) -> float:
    """SciPy's ``gaussian_laplace`` of a constant 1, in float64.

    Its truncated kernels do not sum to zero, so a constant c gives c times this.
    """
    second, zeroth = _gaussian_kernel64(sigma, 2), _gaussian_kernel64(sigma, 0)
    return 2.0 * float(second.sum()) * float(zeroth.sum())


DIFF = np.array([-1.0, 0.0, 1.0], dtype=np.float32)
SOBEL_SMOOTH = np.array([1.0, 2.0, 1.0], dtype=np.float32)
PREWITT_SMOOTH = np.array([1.0, 1.0, 1.0], dtype=np.float32)


def separable(frame, kernel_rows, kernel_cols, out: np.ndarray) -> np.ndarray:
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


def gradient_magnitude(frame, kernel_diff, kernel_smooth, out: np.ndarray) -> np.ndarray:
    """hypot of the derivatives along both axes (difference ⊗ smoothing kernels) into ``out``.

    NumPy does the squares and root rather than ``cv2.magnitude``, whose last
    bit differs between the main thread and worker threads: a stack's result
    must equal the stack of its frames' results exactly.
    """
    along_rows = separable(frame, kernel_diff, kernel_smooth, scratch.get("d0", frame.shape))
    along_cols = separable(frame, kernel_smooth, kernel_diff, scratch.get("d1", frame.shape))
    np.multiply(along_rows, along_rows, out=along_rows)
    np.multiply(along_cols, along_cols, out=along_cols)
    np.add(along_rows, along_cols, out=out)
    return np.sqrt(out, out=out)


def normalize_in_place(frame: np.ndarray) -> np.ndarray:
    """255·(x − min)/(max − min) on a float32 frame, in place; a constant frame gives zeros."""
    low, high = cv2.minMaxLoc(frame)[:2]
    span = high - low
    if not span > 0:
        frame.fill(0)
        return frame
    np.subtract(frame, np.float32(low), out=frame)
    return np.multiply(frame, np.float32(255.0 / span), out=frame)


def frame_offset(frame: np.ndarray) -> float:
    """The value taken off ``frame`` before it becomes float32.

    0 when float32 holds every value of the dtype exactly; otherwise the middle
    of the frame's range, so that float64 or int32 data far from zero keep
    their detail. The edge filters do not change under an offset (their
    derivative kernels sum to zero); the Laplacian of Gaussian adds it back.
    """
    if frame.dtype.type in _EXACT_IN_FLOAT32:
        return 0.0
    return float(frame.min()) / 2 + float(frame.max()) / 2


def to_float32(frame: np.ndarray, out: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """``frame - offset`` (computed in the frame's own precision) written into float32 ``out``."""
    if offset:
        return np.subtract(frame, offset, out=out, casting="unsafe")
    np.copyto(out, frame, casting="unsafe")
    return out


def as_opencv_input(frame: np.ndarray) -> tuple[np.ndarray, float]:
    """``frame`` as OpenCV reads it (native-endian, C-contiguous, a depth it knows) and its offset.

    uint8, uint16, int16 and float32 frames pass through without a copy (offset
    0); every other dtype becomes ``frame - frame_offset(frame)`` in a
    per-thread float32 buffer.
    """
    if frame.dtype.type in _CV_NATIVE and frame.dtype.isnative:
        return np.ascontiguousarray(frame), 0.0
    offset = frame_offset(frame)
    return to_float32(frame, scratch.get("input", frame.shape), offset), offset


@lru_cache(maxsize=32)
def fourier_gaussian_row_ccs(length: int, sigma: float) -> np.ndarray:
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


def smooth_rows_in_fourier(data: np.ndarray, sigma: float, name: str) -> np.ndarray:
    """Fourier-domain Gaussian smoothing of every row of ``data`` (float32, C-contiguous)."""
    spectrum = cv2.dft(data, dst=scratch.get(f"{name}-spectrum", data.shape), flags=cv2.DFT_ROWS)
    np.multiply(spectrum, fourier_gaussian_row_ccs(data.shape[1], sigma), out=spectrum)
    return cv2.idft(
        spectrum,
        dst=scratch.get(f"{name}-rows", data.shape),
        flags=cv2.DFT_ROWS | cv2.DFT_REAL_OUTPUT,
    )


def fourier_smooth_frame(frame: np.ndarray, sigma: float) -> np.ndarray:
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
    data = to_float32(frame, scratch.get("input", frame.shape), frame_offset(frame))
    if min(data.shape) < 8:
        spectrum = ndimage.fourier_gaussian(scipy.fft.rfft2(data), sigma, n=data.shape[-1])
        return np.ascontiguousarray(scipy.fft.irfft2(spectrum, s=data.shape), np.float32)
    along_rows = smooth_rows_in_fourier(data, sigma, "rows")
    transposed = cv2.transpose(along_rows, dst=scratch.get("transposed", data.shape[::-1]))
    along_both = smooth_rows_in_fourier(transposed, sigma, "columns")
    return cv2.transpose(along_both, dst=scratch.get("smooth", data.shape))


def dtype_max(dtype: np.dtype) -> float:
    """The intensity that skimage maps to 1.0: the integer type's max, or 1.0 for floats."""
    if dtype.kind == "b":
        return 1.0
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return 1.0


def suppress_and_link(d_rows, d_cols, low: float, high: float, out: np.ndarray) -> None:
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
    magnitude = np.multiply(d_rows, d_rows, out=scratch.get("magnitude", d_rows.shape))
    cols_squared = np.multiply(d_cols, d_cols, out=scratch.get("squared", d_rows.shape))
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
