"""The building blocks of the filters, each on one 2D frame: SciPy's Gaussian kernels,
separable correlation with OpenCV, row bands, gradient magnitudes, min-max
normalisation and Fourier-domain Gaussian smoothing."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import scipy.fft
from scipy import ndimage

from napari_xray.engine._frames import scratch, sharing_the_cores

# scipy.ndimage's default truncation: the kernel radius is int(truncate * sigma + 0.5).
_TRUNCATE = 4.0
# Depths that cv2.sepFilter2D reads directly into a float32 output, on OpenCV 4 and 5
# alike (OpenCV 5 refuses float64 input with float32 output).
_CV_NATIVE = (np.uint8, np.uint16, np.int16, np.float32)
# Dtypes all of whose values float32 holds exactly: converted without an offset.
_EXACT_IN_FLOAT32 = (np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.float16, np.float32)
#: Rows of a band: a band's float32 work buffers (a few times 256 KB for 1024 columns)
#: stay in the L2 cache between the steps of a filter.
BAND_ROWS = 64


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


def row_bands(height: int, halo: int, rows: int = BAND_ROWS) -> list[tuple[int, int, int, int]]:
    """The row bands of a frame as ``(first, stop, top, bottom)``.

    Output rows ``[first, stop)`` are computed from input rows ``[top, bottom)``:
    the band widened by ``halo`` rows on each side and clamped to the frame. A
    filter of radius up to ``halo`` with the frame's reflect border gives exactly
    its whole-frame result on the band's own rows (only rows within ``halo`` of an
    artificial band edge differ, and those belong to the neighbouring band).
    Bands are ``rows`` to ``2 * rows - 1`` rows; a frame of fewer than ``2 *
    rows`` rows is one band, and so is every frame while the thread shares the
    cores with other workers (see :func:`~napari_xray.engine._frames.sharing_the_cores`).
    """
    count = height // rows
    if count < 2 or sharing_the_cores():
        return [(0, height, 0, height)]
    edges = [rows * index for index in range(count)] + [height]
    return [
        (first, stop, max(0, first - halo), min(height, stop + halo))
        for first, stop in zip(edges[:-1], edges[1:], strict=True)
    ]


def filter_bands(height: int, halo: int) -> list[tuple[int, int, int, int]]:
    """:func:`row_bands` for a filter of radius ``halo``: 3×3 kernels in bands, wider ones whole.

    Each band recomputes ``2 * halo`` rows; measured on 1024² frames, bands of
    64 rows pay off for a radius up to 2, while wider kernels (LoG at σ = 1,
    radius 4; the gradient at σ = 2, radius 8) run faster on the whole frame.
    """
    if halo > 2:
        return [(0, height, 0, height)]
    return row_bands(height, halo)


def magnitude(along_rows: np.ndarray, along_cols: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``sqrt(along_rows² + along_cols²)`` in float32 into ``out`` (``cv2.magnitude``).

    Intel IPP is switched off for the call (in this thread only): IPP's magnitude
    rounds a few pixels differently depending on the output's address, and a
    stack's result must equal the stack of its frames' results bit for bit.
    OpenCV's own loop depends only on the array's length.
    """
    use_ipp = cv2.ipp.useIPP()
    if use_ipp:
        cv2.ipp.setUseIPP(False)
    try:
        cv2.magnitude(along_rows, along_cols, out)
    finally:
        if use_ipp:
            cv2.ipp.setUseIPP(True)
    return out


def gradient_magnitude(
    frame, kernel_diff, kernel_smooth, out: np.ndarray, rows_of=None, extremes: bool = False
):
    """hypot of the derivatives along both axes (difference ⊗ smoothing kernels) into ``out``.

    Works in row bands (see :func:`filter_bands`), so the two derivatives of a
    band are still in the cache when their magnitude is taken. ``rows_of(top,
    bottom)``, if given, supplies the input rows of a band (default
    ``frame[top:bottom]``); ``frame`` then only gives the shape. Returns the
    result's (min, max) when ``extremes`` is true, else ``None``.
    """
    height, width = frame.shape
    bands = filter_bands(height, max(len(kernel_diff), len(kernel_smooth)) // 2)
    rows = max(bottom - top for _, _, top, bottom in bands)
    # On the whole frame the first derivative goes straight into `out` (one
    # frame-sized buffer less for the cache to hold); the magnitude is taken in place.
    derivative_rows = out if len(bands) == 1 else scratch.get("d0", (rows, width))
    derivative_cols = scratch.get("d1", (rows, width))
    low, high = np.inf, -np.inf
    for first, stop, top, bottom in bands:
        source = frame[top:bottom] if rows_of is None else rows_of(top, bottom)
        count, inner = bottom - top, slice(first - top, stop - top)
        along_rows = separable(source, kernel_diff, kernel_smooth, derivative_rows[:count])
        along_cols = separable(source, kernel_smooth, kernel_diff, derivative_cols[:count])
        band = magnitude(along_rows[inner], along_cols[inner], out[first:stop])
        if extremes:
            band_low, band_high = cv2.minMaxLoc(band)[:2]
            low, high = min(low, band_low), max(high, band_high)
    return (low, high) if extremes else None


def normalize_in_place(frame: np.ndarray, extremes=None) -> np.ndarray:
    """255·(x − min)/(max − min) on a float32 frame, in place; a constant frame gives zeros.

    ``extremes`` is the frame's (min, max) if already known. The two passes run
    band by band, so the frame is read and written once.
    """
    low, high = cv2.minMaxLoc(frame)[:2] if extremes is None else extremes
    span = high - low
    if not span > 0:
        frame.fill(0)
        return frame
    offset, scale = np.float32(low), np.float32(255.0 / span)
    for first, stop, _, _ in row_bands(frame.shape[0], 0):
        band = frame[first:stop]
        np.subtract(band, offset, out=band)
        np.multiply(band, scale, out=band)
    return frame


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


@lru_cache(maxsize=32)
def _transfer_rows(length: int, sigma: float) -> np.ndarray:
    """:func:`fourier_gaussian_row_ccs` repeated for the rows of the largest band.

    NumPy multiplies two arrays of one shape about twice as fast as it
    broadcasts a row over a band.
    """
    rows = 2 * BAND_ROWS + 2
    return np.ascontiguousarray(
        np.broadcast_to(fourier_gaussian_row_ccs(length, sigma), (rows, length))
    )


def smooth_rows_in_fourier(data: np.ndarray, sigma: float, out: np.ndarray) -> np.ndarray:
    """Fourier-domain Gaussian smoothing of each row of float32 ``data`` into ``out``."""
    rows, length = data.shape
    spectrum = cv2.dft(data, dst=scratch.get("spectrum", data.shape), flags=cv2.DFT_ROWS)
    transfer = _transfer_rows(length, sigma)
    for first in range(0, rows, len(transfer)):
        chunk = spectrum[first : first + len(transfer)]
        np.multiply(chunk, transfer[: len(chunk)], out=chunk)
    return cv2.idft(spectrum, dst=out, flags=cv2.DFT_ROWS | cv2.DFT_REAL_OUTPUT)


def smooth_columns_in_fourier(frame: np.ndarray, sigma: float) -> np.ndarray:
    """The column half of :func:`fourier_smooth_frame`: a float32 frame (per-thread buffer).

    The frame is transposed in its own depth (a uint8 transpose moves a quarter
    of the bytes of a float32 one); then, band by band (so the spectra stay in
    the cache), its rows — the frame's columns — are converted, smoothed and
    transposed back into the result's columns.
    """
    pixels = as_opencv_input(frame)[0]
    height, width = frame.shape
    transposed = cv2.transpose(pixels, dst=scratch.get("transposed", (width, height), pixels.dtype))
    result = scratch.get("smooth-columns", (height, width))
    for first, stop, _, _ in row_bands(width, 0):
        rows = transposed[first:stop]
        if rows.dtype != np.float32:
            rows = to_float32(rows, scratch.get("transposed-f", rows.shape))
        smoothed = smooth_rows_in_fourier(rows, sigma, scratch.get("columns", rows.shape))
        cv2.transpose(smoothed, dst=result[:, first:stop])
    return result


def fourier_smooth_frame(frame: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of one frame in the Fourier domain, as C-contiguous float32.

    FFT → ``scipy.ndimage.fourier_gaussian`` on the spectrum (``n`` = frame width
    for the real FFT) → inverse FFT. Equals ``gaussian_filter(frame, sigma,
    mode="wrap")`` up to the Gaussian's truncation: Fourier filtering treats the
    frame as periodic.

    The Gaussian's transfer function is separable, so multiplying the 2D
    spectrum by it is the same linear operator as doing so along the columns and
    then along the rows; OpenCV's packed 1D real DFTs (columns via a transpose)
    do that about 1.5× faster than a 2D transform. Tiny frames use
    ``scipy.fft`` directly.
    """
    if min(frame.shape) < 8:
        data = to_float32(frame, scratch.get("input", frame.shape), frame_offset(frame))
        spectrum = ndimage.fourier_gaussian(scipy.fft.rfft2(data), sigma, n=data.shape[-1])
        return np.ascontiguousarray(scipy.fft.irfft2(spectrum, s=data.shape), np.float32)
    columns = smooth_columns_in_fourier(frame, sigma)
    return smooth_rows_in_fourier(columns, sigma, scratch.get("smooth", frame.shape))


def dtype_max(dtype: np.dtype) -> float:
    """The intensity that skimage maps to 1.0: the integer type's max, or 1.0 for floats."""
    if dtype.kind == "b":
        return 1.0
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return 1.0
