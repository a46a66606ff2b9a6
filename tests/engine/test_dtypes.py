"""Every real dtype NumPy has, in every memory layout, through every filter.

Each result is checked against SciPy on the float64 copy of the same pixels (or
skimage for Canny), within 1e-4 of the result's range; the input is never
modified. Values are placed where each dtype really holds data (int32 CT-like
values around -1000, uint32 counts in the millions, float64 in [0, 1] …).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage import feature as skimage_feature
from test_filters import (
    assert_close_to_reference,
    ref_fourier_prewitt,
    ref_gradient,
    ref_log,
    ref_sobel,
)

from napari_xray.engine import filters

SHAPE = (2, 40, 52)


def _smooth_pattern(seed: int = 3) -> np.ndarray:
    """A smooth float64 pattern in [0, 1] with edges: blurred blocks plus a ramp."""
    rng = np.random.default_rng(seed)
    blocks = np.kron(rng.random((SHAPE[0], 5, 13)), np.ones((1, 8, 4)))
    ramp = np.linspace(0, 0.3, SHAPE[2])[None, None, :]
    return ndimage.gaussian_filter(blocks, (0, 1.5, 1.5)) * 0.7 + ramp


#: dtype -> (offset, scale): pixels = offset + scale * pattern, in the dtype.
PLACEMENT = {
    np.bool_: (0, 1),
    np.int8: (-100, 200),
    np.uint8: (0, 255),
    np.int16: (-1024, 3000),
    np.uint16: (0, 65535),
    np.int32: (-1024, 4000),
    np.uint32: (3_000_000, 4096),
    np.int64: (-2_000_000, 60_000),
    np.uint64: (10_000_000, 60_000),
    np.float16: (0, 1),
    np.float32: (-0.5, 1),
    np.float64: (0, 1),
    np.longdouble: (1000, 1),
}

LAYOUTS = {
    "C": lambda a: np.ascontiguousarray(a),
    "fortran": lambda a: np.asfortranarray(a),
    "strided view": lambda a: np.repeat(a, 2, axis=2)[:, :, ::2],
    "reversed view": lambda a: np.ascontiguousarray(a[:, ::-1, ::-1])[:, ::-1, ::-1],
    "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")) if a.dtype.itemsize > 1 else a,
    "read-only": lambda a: _read_only(a),
}


def _read_only(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array.flags.writeable = False
    return array


def _image(dtype, layout: str) -> np.ndarray:
    offset, scale = PLACEMENT[dtype]
    pattern = _smooth_pattern()
    if dtype is np.bool_:
        values = pattern > 0.45
    else:
        values = offset + scale * pattern
        if np.issubdtype(dtype, np.integer):
            values = np.rint(values)
    return LAYOUTS[layout](np.asarray(values).astype(dtype))


FILTERS = {
    "log": (lambda a: filters.laplace_of_gaussian(a, 1.5), lambda f: ref_log(f, 1.5)),
    "gradient": (
        lambda a: filters.gaussian_gradient_magnitude(a, 2.0),
        lambda f: ref_gradient(f, 2.0),
    ),
    "sobel": (lambda a: filters.sobel_magnitude(a, normalize=False), lambda f: ref_sobel(f, False)),
    "sobel normalized": (lambda a: filters.sobel_magnitude(a), lambda f: ref_sobel(f, True)),
    "prewitt": (
        lambda a: filters.fourier_prewitt(a, 2.0, normalize=False),
        lambda f: ref_fourier_prewitt(f, 2.0, False),
    ),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", PLACEMENT, ids=lambda t: np.dtype(t).name)
def test_every_dtype_and_layout_matches_scipy_float64(dtype, layout):
    image = _image(dtype, layout)
    before = image.copy()
    for name, (ours, reference) in FILTERS.items():
        result = ours(image)
        assert result.shape == image.shape and result.dtype == np.float32, name
        for index in range(image.shape[0]):
            frame = np.asarray(image[index], dtype=np.float64)
            try:
                assert_close_to_reference(result[index], reference(frame))
            except AssertionError as error:
                raise AssertionError(f"{name}, frame {index}: {error}") from None
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("layout", ["C", "big-endian", "fortran"])
@pytest.mark.parametrize("dtype", PLACEMENT, ids=lambda t: np.dtype(t).name)
def test_every_dtype_gives_skimage_canny(dtype, layout):
    image = _image(dtype, layout)
    offset, scale = PLACEMENT[dtype]
    low, high = 0.05 * scale, 0.15 * scale  # in the image's own units, as skimage's
    edges = filters.canny(image, 1.5, low, high)
    assert edges.dtype == bool and edges.shape == image.shape
    for index in range(image.shape[0]):
        reference = skimage_feature.canny(
            np.asarray(image[index], np.float64), 1.5, low, high, mode="reflect"
        )
        both = np.count_nonzero(edges[index] & reference)
        dice = 2 * both / max(1, np.count_nonzero(edges[index]) + np.count_nonzero(reference))
        assert dice >= 0.97, f"frame {index}: Dice {dice:.3f}"


@pytest.mark.parametrize("dtype", PLACEMENT, ids=lambda t: np.dtype(t).name)
def test_every_dtype_normalizes_and_masks_like_numpy(dtype):
    image = _image(dtype, "C")
    for index, frame in enumerate(np.asarray(image, np.float64)):
        span = frame.max() - frame.min()
        expected = np.zeros_like(frame) if span == 0 else 255 * (frame - frame.min()) / span
        np.testing.assert_allclose(filters.normalize(image)[index], expected, atol=255e-5)
    threshold = float(np.median(np.asarray(image, np.float64)))
    kept = filters.threshold_mask(image, threshold, mode="keep")
    np.testing.assert_array_equal(kept, np.where(image > threshold, image, 0))
    np.testing.assert_array_equal(
        filters.threshold_mask(image, threshold, mode="binary"), image > threshold
    )


def test_float64_c_contiguous_input_is_filtered_on_this_opencv():
    """OpenCV 5 refuses float64 input with float32 output; the engine must not pass it."""
    import cv2

    image = _image(np.float64, "C") * 255.0
    for key in ("log", "gradient", "sobel"):
        ours, reference = FILTERS[key]
        result = ours(image)
        for index, frame in enumerate(image):
            assert_close_to_reference(result[index], reference(frame))
    assert filters.canny(image, 2.0).any(), cv2.__version__


@pytest.mark.parametrize(
    "values",
    [
        pytest.param((1e29, -1e29), id="±1e29"),
        pytest.param((np.finfo(np.float32).max, 0.0), id="float32 max"),
        pytest.param((1e300, 1e300), id="constant 1e300"),
        pytest.param((np.finfo(np.float64).tiny, 0.0), id="float64 tiny"),
        pytest.param((np.iinfo(np.int64).max, np.iinfo(np.int64).min), id="int64 limits"),
        pytest.param((np.iinfo(np.uint64).max, 0), id="uint64 limits"),
    ],
)
def test_extreme_finite_values_give_finite_results_or_a_clear_error(values):
    high, low = values
    dtype = np.result_type(type(high), type(low)) if isinstance(high, int) else np.float64
    if isinstance(high, int):
        dtype = np.uint64 if low >= 0 else np.int64
    image = np.full((24, 24), low, dtype=dtype)
    image[8:16, 8:16] = high
    for name, function in [
        ("log", lambda a: filters.laplace_of_gaussian(a, 0.01)),
        ("gradient", lambda a: filters.gaussian_gradient_magnitude(a, 0.5)),
        ("sobel", filters.sobel_magnitude),
        ("prewitt", filters.fourier_prewitt),
        ("canny", filters.canny),
        ("normalize", filters.normalize),
    ]:
        try:
            result = function(image)
        except ValueError as error:
            assert "rescale" in str(error), name
            continue
        assert np.isfinite(np.asarray(result, np.float64)).all(), name


@pytest.mark.parametrize("sigma", [1e-300, 1e-3, 0.009])
def test_a_sigma_too_small_for_finite_results_is_a_clear_error(sigma):
    with pytest.raises(ValueError, match="below 0.01"):
        filters.laplace_of_gaussian(np.ones((8, 8)), sigma)


def test_the_smallest_sigma_gives_finite_results():
    image = np.zeros((16, 16), np.uint16)
    image[4:12, 4:12] = 65535
    for function in (filters.laplace_of_gaussian, filters.gaussian_gradient_magnitude):
        assert np.isfinite(function(image, 0.01)).all()
