"""Seeded random arrays through every operation: a clear error or the right answer.

Each case draws a dtype (every real one NumPy has, and some that are not
images), a memory layout, a shape (tiny, odd, empty, 4-D, RGB-like) and values
(smooth data at the dtype's own scale, extremes, NaN/inf), then one operation
with valid or invalid parameters. The outcome must be a ``ValueError`` that
says what to do, or a result equal to an independent reference (SciPy on the
float64 frames; skimage for Canny; NumPy for masks), finite, with the input
unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy import ndimage

from napari_xray.engine.operations import OPERATIONS

CLEAR_ERROR = "clear error"
RIGHT_ANSWER = "right answer"

REAL_DTYPES = (
    np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
    np.uint64, np.float16, np.float32, np.float64, np.longdouble,
)  # fmt: skip
NON_IMAGE_DTYPES = (np.complex64, np.complex128, object, "U3", "datetime64[s]", "V4")
LAYOUTS = ("C", "fortran", "strided", "reversed", "big-endian", "read-only", "broadcast")
#: Words a clear error names: what was wrong, or what to pass instead.
ADVICE = ("pass", "replace", "rescale", "convert", "must", "choose", "below", "above", "looks like")


@dataclass
class ArrayCase:
    """One fuzz case: an image, an operation and its parameters."""

    name: str
    image: np.ndarray
    key: str
    params: dict


def _values(rng: np.random.Generator, dtype, shape) -> np.ndarray:
    """Smooth values at the dtype's own scale, sometimes extreme or with NaN/inf."""
    smooth = rng.random(shape)
    if smooth.size:
        smooth = ndimage.gaussian_filter(smooth, (0,) * (len(shape) - 2) + (1.5, 1.5))
        smooth = (smooth - smooth.min()) / (np.ptp(smooth) or 1.0)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return smooth > 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        style = rng.integers(3)
        if style == 0:  # the full range of the dtype
            low, high = float(info.min), float(info.max)
        elif style == 1:  # a small window somewhere inside it
            span = min(4096.0, float(info.max) - float(info.min))
            low = float(rng.uniform(float(info.min), float(info.max) - span))
            high = low + span
        else:
            low, high = float(max(info.min, 0)), float(min(info.max, 255))
        values = np.floor(low + (high - low) * smooth)
        # float64 rounds the 64-bit limits up, out of range: stay one step inside.
        upper = np.nextafter(float(info.max), 0.0)
        return np.clip(values, float(info.min), upper).astype(dtype)
    style = rng.integers(5)
    scale = {0: 1.0, 1: 255.0, 2: 1e6, 3: 1e20, 4: 1.0}[int(style)]
    values = (smooth - 0.5 * rng.integers(2)) * scale
    if style == 4 and values.size > 2:  # a NaN or inf somewhere
        values.flat[rng.integers(values.size)] = rng.choice([np.nan, np.inf, -np.inf])
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype)


def _layout(rng: np.random.Generator, array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided":
        return np.repeat(array, 2, axis=-1)[..., ::2]
    if layout == "reversed":
        return np.ascontiguousarray(array[..., ::-1, ::-1])[..., ::-1, ::-1]
    if layout == "big-endian" and array.dtype.itemsize > 1:
        return array.astype(array.dtype.newbyteorder(">"))
    if layout == "read-only":
        array = array.copy()
        array.flags.writeable = False
        return array
    if layout == "broadcast" and array.ndim == 3:
        return np.broadcast_to(array[:1], array.shape)  # zero stride along the stack
    return np.ascontiguousarray(array)


def _shape(rng: np.random.Generator) -> tuple[int, ...]:
    kind = rng.integers(10)
    if kind == 0:
        return (int(rng.integers(1, 4)), int(rng.integers(1, 4)))  # tiny
    if kind == 1:
        return (int(rng.integers(1, 3)), int(rng.integers(5, 40)), int(rng.integers(5, 40)))
    if kind == 2:
        return (0, 8) if rng.integers(2) else (2, 0, 8)  # empty
    if kind == 3:
        return (2, 2, 8, 8)  # too many dimensions
    if kind == 4:
        return (24, 24, int(rng.choice([3, 4])))  # looks like RGB(A)
    return (int(rng.integers(8, 48)), int(rng.integers(8, 48)))


def _params(rng: np.random.Generator, key: str, image: np.ndarray) -> dict:
    operation = OPERATIONS[key]
    params = {}
    for parameter in operation.parameters:
        if parameter.name == "sigma":
            valid = rng.random() < 0.85
            choices = [0.5, 1.0, 1.5, 2.5] if valid else [1e-4, -1.0, 1e3, np.nan]
            params["sigma"] = float(rng.choice(choices))
        elif parameter.name == "threshold":
            middle = 0.0
            if image.dtype.kind in "biuf" and image.size:
                finite = np.asarray(image, np.float64)
                finite = finite[np.isfinite(finite)]
                middle = float(np.median(finite)) if finite.size else 0.0
            choices = [middle, middle + 0.5, middle - 0.5, 1e300, -1e300, np.nan]
            params["threshold"] = float(rng.choice(choices, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1]))
        elif parameter.name in ("low_threshold", "high_threshold"):
            params[parameter.name] = None
    return params


def array_cases(seed: int, count: int) -> Iterator[ArrayCase]:
    """``count`` seeded cases; the same seed always gives the same cases."""
    rng = np.random.default_rng(seed)
    keys = list(OPERATIONS)
    for index in range(count):
        bad_dtype = rng.random() < 0.08
        dtype = NON_IMAGE_DTYPES[rng.integers(len(NON_IMAGE_DTYPES))] if bad_dtype else (
            REAL_DTYPES[rng.integers(len(REAL_DTYPES))]
        )
        shape = _shape(rng)
        layout = LAYOUTS[rng.integers(len(LAYOUTS))]
        if bad_dtype:
            image = np.zeros(shape, dtype=dtype)
        else:
            image = _layout(rng, _values(rng, dtype, shape), layout)
        key = keys[rng.integers(len(keys))]
        params = _params(rng, key, image)
        name = f"{index}: {key} {np.dtype(dtype).name} {shape} {layout} {params}"
        yield ArrayCase(name, image, key, params)


def _reference(key: str, frame: np.ndarray, params: dict) -> np.ndarray:
    """The operation on one float64 frame, computed by SciPy / NumPy / skimage."""
    f = np.asarray(frame, np.float64)
    sigma = params.get("sigma")
    if key == "log":
        return ndimage.gaussian_laplace(f, sigma)
    if key == "gradient":
        return ndimage.gaussian_gradient_magnitude(f, sigma)
    if key in ("sobel", "prewitt"):
        if key == "prewitt":
            spectrum = ndimage.fourier_gaussian(scipy.fft.rfft2(f), sigma, n=f.shape[-1])
            f = scipy.fft.irfft2(spectrum, s=f.shape)
        derivative = ndimage.sobel if key == "sobel" else ndimage.prewitt
        magnitude = np.hypot(derivative(f, axis=0), derivative(f, axis=1))
        if not params["normalize"]:
            return magnitude
        span = magnitude.max() - magnitude.min()
        return np.zeros_like(magnitude) if span == 0 else 255 * (magnitude - magnitude.min()) / span
    raise KeyError(key)


def check_array_case(case: ArrayCase) -> str:
    """Run one case; return CLEAR_ERROR or RIGHT_ANSWER, or raise AssertionError saying why."""
    before = np.array(case.image, copy=True)
    operation = OPERATIONS[case.key]
    try:
        result = operation(case.image, **case.params)
    except (ValueError, KeyError) as error:
        message = str(error)
        assert any(word in message for word in ADVICE), f"unclear error: {message!r}"
        np.testing.assert_array_equal(case.image, before, err_msg="the input was modified")
        return CLEAR_ERROR
    except Exception as error:  # anything else is a crash
        raise AssertionError(f"{type(error).__name__}: {error}") from error
    np.testing.assert_array_equal(case.image, before, err_msg="the input was modified")
    assert result.shape == case.image.shape, f"shape {result.shape} != {case.image.shape}"
    values = np.asarray(result, np.float64)
    assert np.isfinite(values).all(), "non-finite result"
    frames = case.image.reshape((-1, *case.image.shape[-2:]))
    results = result.reshape((-1, *result.shape[-2:]))
    params = operation.resolve(case.params)
    for frame, out in zip(frames, results, strict=True):
        _check_frame(case.key, np.asarray(frame), out, params)
    return RIGHT_ANSWER


def _check_frame(key: str, frame: np.ndarray, out: np.ndarray, params: dict) -> None:
    if key == "mask":
        threshold = params["threshold"]
        expected = frame > threshold
        if params["mode"] == "keep":
            expected = np.where(expected, frame, np.zeros((), frame.dtype))
        np.testing.assert_array_equal(out, expected)
        return
    if key == "canny":
        from skimage.feature import canny as skimage_canny

        assert out.dtype == bool
        if min(frame.shape) < 3 or frame.dtype == bool:
            return  # skimage pads differently below 3 pixels; bool has no 10 %/20 % scale
        scale = float(np.iinfo(frame.dtype).max) if frame.dtype.kind in "iu" else 1.0
        reference = skimage_canny(
            np.asarray(frame, np.float64), params["sigma"], 0.1 * scale, 0.2 * scale,
            mode="reflect",
        )  # fmt: skip
        total = np.count_nonzero(out) + np.count_nonzero(reference)
        if total > 40:  # Dice is meaningless on a handful of pixels
            dice = 2 * np.count_nonzero(out & reference) / total
            assert dice >= 0.9, f"Canny Dice {dice:.3f} against skimage"
        return
    reference = _reference(key, frame, params)
    span = float(reference.max() - reference.min()) or 1.0
    # float32 results hold values to within their own precision, whatever the range.
    representable = 2 * float(np.finfo(np.float32).eps) * float(np.abs(reference).max())
    error = float(np.max(np.abs(out.astype(np.float64) - reference)))
    allowed = 1e-4 * span + representable
    assert error <= allowed, f"{key}: max error {error:g} > 1e-4 × range {span:g} (+ float32)"
