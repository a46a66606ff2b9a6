"""The filter engine against independent references: scipy.ndimage on float64, skimage, NumPy.

Every comparison is to a reference computed here from first principles, never to
the engine's own earlier output.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import scipy.fft
from scipy import ndimage
from skimage import feature as skimage_feature

import napari_xray
from napari_xray.engine import filters
from napari_xray.engine._kernels import fourier_smooth_frame
from napari_xray.engine.operations import OPERATIONS

# --------------------------------------------------------------------------- references


def ref_log(frame, sigma=1.0):
    return ndimage.gaussian_laplace(np.asarray(frame, np.float64), sigma)


def ref_gradient(frame, sigma=2.0):
    return ndimage.gaussian_gradient_magnitude(np.asarray(frame, np.float64), sigma)


def ref_normalize(x):
    span = x.max() - x.min()
    return np.zeros_like(x) if span == 0 else 255 * (x - x.min()) / span


def ref_sobel(frame, normalize=True):
    f = np.asarray(frame, np.float64)
    magnitude = np.hypot(ndimage.sobel(f, axis=0), ndimage.sobel(f, axis=1))
    return ref_normalize(magnitude) if normalize else magnitude


def ref_fourier_smooth(frame, sigma):
    f = np.asarray(frame, np.float64)
    spectrum = ndimage.fourier_gaussian(scipy.fft.rfft2(f), sigma, n=f.shape[-1])
    return scipy.fft.irfft2(spectrum, s=f.shape)


def ref_fourier_prewitt(frame, sigma=1.0, normalize=True):
    smoothed = ref_fourier_smooth(frame, sigma)
    magnitude = np.hypot(ndimage.prewitt(smoothed, axis=0), ndimage.prewitt(smoothed, axis=1))
    return ref_normalize(magnitude) if normalize else magnitude


def assert_close_to_reference(result, reference, rel=1e-4):
    """Within ``rel`` of the reference frame's result range (the issue's exactness bound)."""
    assert result.dtype == np.float32
    span = float(reference.max() - reference.min()) or 1.0
    error = float(np.max(np.abs(result.astype(np.float64) - reference)))
    assert error <= rel * span, f"max error {error:g} > {rel:g} × range {span:g}"


def dice(a, b):
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(a, b).sum() / total


FLOAT_FILTERS = [
    ("log", filters.laplace_of_gaussian, ref_log, {"sigma": 1.0}),
    ("log", filters.laplace_of_gaussian, ref_log, {"sigma": 3.5}),
    ("gradient", filters.gaussian_gradient_magnitude, ref_gradient, {"sigma": 2.0}),
    ("gradient", filters.gaussian_gradient_magnitude, ref_gradient, {"sigma": 0.7}),
    ("sobel", filters.sobel_magnitude, ref_sobel, {"normalize": True}),
    ("sobel", filters.sobel_magnitude, ref_sobel, {"normalize": False}),
    ("prewitt", filters.fourier_prewitt, ref_fourier_prewitt, {"sigma": 1.0}),
    ("prewitt", filters.fourier_prewitt, ref_fourier_prewitt, {"sigma": 3.0, "normalize": False}),
]
FILTER_IDS = [f"{key}-{params}" for key, _, _, params in FLOAT_FILTERS]


# --------------------------------------------------------------------------- exactness, real frames


@pytest.mark.realdata
@pytest.mark.parametrize(("key", "function", "reference", "params"), FLOAT_FILTERS, ids=FILTER_IDS)
def test_filters_match_scipy_float64_on_each_real_frame(
    xray_stack, key, function, reference, params
):
    result = function(xray_stack, **params)
    assert result.shape == xray_stack.shape
    for index, frame in enumerate(xray_stack):
        assert_close_to_reference(result[index], reference(frame, **params))


@pytest.mark.realdata
def test_stack_result_equals_stack_of_frame_results(xray_stack):
    stack = xray_stack[:4]
    for key, operation in OPERATIONS.items():
        whole = operation(stack)
        one_by_one = np.stack([operation(frame) for frame in stack])
        np.testing.assert_array_equal(whole, one_by_one, err_msg=key)


def test_no_filter_mixes_neighbouring_frames():
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 256, (3, 40, 50), dtype=np.uint8)
    changed = stack.copy()
    changed[0] = 255 - changed[0]  # a very different first frame
    for key, operation in OPERATIONS.items():
        np.testing.assert_array_equal(
            operation(stack)[1:], operation(changed)[1:], err_msg=f"{key} leaks across frames"
        )


def test_uint8_step_is_not_wrapped_like_scipy_on_uint8():
    # GUIDE §1: scipy on uint8 wraps a 0→255 step (sobel gives 252, not 1020).
    image = np.zeros((16, 16), np.uint8)
    image[:, 8:] = 255
    sobel = filters.sobel_magnitude(image, normalize=False)
    assert sobel.max() == pytest.approx(1020.0)
    assert ndimage.sobel(image, axis=1).max() != 1020  # the tutorial's wrap-around
    log = filters.laplace_of_gaussian(image, 1.0)
    np.testing.assert_allclose(log, ref_log(image, 1.0), atol=1e-3)
    assert log.min() < 0  # a signed response, impossible in uint8


@pytest.mark.realdata
def test_fourier_smoothing_is_gaussian_wrap_not_the_tutorials_vignette(xray_stack):
    frame = xray_stack[1].astype(np.float64)
    smoothed = fourier_smooth_frame(xray_stack[1], 2.0)
    wrapped = ndimage.gaussian_filter(frame, 2.0, mode="wrap", truncate=8.0)
    assert np.max(np.abs(smoothed - wrapped)) < 0.05  # gray levels
    # The tutorial's call treats pixels as a spectrum: each pixel is only scaled
    # by a fixed factor (a vignette), nothing is smoothed.
    tutorial = ndimage.fourier_gaussian(frame, sigma=4)
    np.testing.assert_allclose(tutorial, frame * ndimage.fourier_gaussian(np.ones_like(frame), 4))
    assert np.abs(smoothed - frame).max() > 20  # real smoothing changes edges a lot


@pytest.mark.realdata
@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_canny_agrees_with_skimage_on_each_real_frame(xray_stack, sigma):
    edges = filters.canny(xray_stack, sigma)
    assert edges.dtype == bool
    for index, frame in enumerate(xray_stack):
        reference = skimage_feature.canny(frame, sigma, mode="reflect")
        score = dice(edges[index], reference)
        # The issue asks for ≥ 0.9; the same algorithm in float32 reaches ≥ 0.999.
        assert score >= 0.999, f"frame {index}: Dice {score:.4f}"


@pytest.mark.realdata
def test_canny_thresholds_follow_skimage_units(xray_stack):
    frame = xray_stack[3]
    ours = filters.canny(frame, 2.0, low_threshold=20, high_threshold=60)
    reference = skimage_feature.canny(frame, 2.0, 20, 60, mode="reflect")
    assert dice(ours, reference) >= 0.9
    assert ours.sum() != filters.canny(frame, 2.0).sum()


def test_canny_edges_are_one_pixel_thin_and_off_the_border():
    image = np.zeros((64, 64), np.float32)
    image[16:48, 16:48] = 1.0
    edges = filters.canny(image, 1.5)
    assert edges[[0, -1], :].sum() == 0 and edges[:, [0, -1]].sum() == 0
    # Along the square's left side, each row crosses the edge in exactly one pixel.
    rows = edges[24:40, 8:24]
    assert (rows.sum(axis=1) == 1).all()


def test_threshold_masks_are_the_tutorials_np_where():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (2, 30, 30), dtype=np.uint8)
    keep = filters.threshold_mask(image, 150, "keep")
    assert keep.dtype == np.uint8
    np.testing.assert_array_equal(keep, np.where(image > 150, image, 0))
    binary = filters.threshold_mask(image, 150, "binary")
    assert binary.dtype == bool
    np.testing.assert_array_equal(binary, image > 150)
    with pytest.raises(ValueError, match="keep"):
        filters.threshold_mask(image, 150, "fancy")


def test_normalize_maps_each_frame_to_0_255():
    stack = np.stack([np.linspace(10, 20, 100).reshape(10, 10), np.full((10, 10), 7.0)])
    result = filters.normalize(stack)
    assert result.dtype == np.float32
    assert result[0].min() == 0 and result[0].max() == pytest.approx(255)
    np.testing.assert_array_equal(result[1], 0)


# --------------------------------------------------------------------------- memory and input forms


def test_results_are_float32_masks_bool_or_input_dtype():
    image = np.random.default_rng(3).integers(0, 4096, (2, 32, 32), dtype=np.uint16)
    for key, operation in OPERATIONS.items():
        result = operation(image)
        if key == "canny" or (key == "mask" and operation.defaults()["mode"] == "binary"):
            assert result.dtype == bool, key
        elif key == "mask":
            assert result.dtype == image.dtype
        else:
            assert result.dtype == np.float32, key
        assert result.dtype != np.float64


def test_inputs_are_never_modified():
    image = np.random.default_rng(4).normal(100, 30, (3, 40, 40)).astype(np.float32)
    before = image.copy()
    for operation in OPERATIONS.values():
        operation(image)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda a: a[:, ::2, 1::2], id="strided view"),
        pytest.param(lambda a: np.asfortranarray(a[0]), id="fortran"),
        pytest.param(lambda a: a.astype(">f8"), id="big-endian f8"),
        pytest.param(lambda a: a.astype(">u2"), id="big-endian u2"),
        pytest.param(lambda a: a[::-1, ::-1, :], id="reversed view"),
        pytest.param(lambda a: a.astype(np.int64), id="int64"),
        pytest.param(lambda a: a.astype(np.float16), id="float16"),
        pytest.param(lambda a: a.astype(np.int32), id="int32"),
    ],
)
def test_views_and_unusual_dtypes_match_the_reference(make):
    base = np.random.default_rng(5).integers(0, 200, (3, 48, 64)).astype(np.uint8)
    image = make(base)
    frames = image if image.ndim == 3 else image[None]
    log = filters.laplace_of_gaussian(image, 1.5)
    sobel = filters.sobel_magnitude(image, normalize=False)
    log_frames = log if log.ndim == 3 else log[None]
    sobel_frames = sobel if sobel.ndim == 3 else sobel[None]
    for index, frame in enumerate(frames):
        reference_frame = np.asarray(frame, np.float64)
        assert_close_to_reference(log_frames[index], ref_log(reference_frame, 1.5))
        assert_close_to_reference(sobel_frames[index], ref_sobel(reference_frame, False))


def test_bool_input_is_filtered_as_zero_and_one():
    image = np.zeros((20, 20), bool)
    image[5:15, 5:15] = True
    assert_close_to_reference(
        filters.gaussian_gradient_magnitude(image, 1.0), ref_gradient(image.astype(float), 1.0)
    )


# --------------------------------------------------------------------------- bad input


def test_constant_frame_gives_zeros_never_nan():
    stack = np.full((2, 32, 32), 77, np.uint8)
    for key, operation in OPERATIONS.items():
        result = np.asarray(operation(stack), dtype=np.float64)
        assert np.isfinite(result).all(), key
        if key == "log":
            # scipy's truncated second-derivative kernel sums to ~-1e-4, not 0
            np.testing.assert_allclose(result[0], ref_log(stack[0]), atol=1e-4)
            assert np.abs(result).max() < 2e-4 * 77
        elif key != "mask":
            np.testing.assert_allclose(result, 0, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_float_input_is_a_clear_error(bad):
    image = np.ones((10, 10), np.float32)
    image[3, 4] = bad
    for operation in OPERATIONS.values():
        with pytest.raises(ValueError, match="NaN or infinite"):
            operation(image)


@pytest.mark.parametrize("sigma", [0, -1, float("nan"), float("inf"), 1e6, "wide"])
def test_bad_sigma_is_a_clear_error(sigma):
    image = np.ones((10, 10), np.float32)
    for function in (
        filters.laplace_of_gaussian,
        filters.gaussian_gradient_magnitude,
        filters.fourier_prewitt,
        filters.canny,
    ):
        with pytest.raises(ValueError, match="sigma"):
            function(image, sigma=sigma)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((32, 32, 3), np.uint8), "RGB"),
        (np.zeros((32, 32, 4), np.uint8), "RGB"),
        (np.zeros((2, 2, 8, 8), np.uint8), "dimension"),
        (np.zeros(8, np.uint8), "dimension"),
        (np.zeros((0, 8), np.uint8), "empty"),
        (np.zeros((8, 8), complex), "complex"),
        (np.array([["a", "b"]]), "dtype"),
    ],
)
def test_unfilterable_images_are_clear_errors(image, message):
    for operation in OPERATIONS.values():
        with pytest.raises(ValueError, match=message):
            operation(image)


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 7), (5, 1), (3, 3), (7, 9), (33, 45), (40, 41), (64, 9), (9, 64)]
)
def test_tiny_images_match_scipy(shape):
    image = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) * 3 % 11
    assert_close_to_reference(filters.laplace_of_gaussian(image, 2.0), ref_log(image, 2.0))
    assert_close_to_reference(
        filters.gaussian_gradient_magnitude(image, 2.0), ref_gradient(image, 2.0)
    )
    assert_close_to_reference(filters.sobel_magnitude(image, False), ref_sobel(image, False))
    assert_close_to_reference(
        filters.fourier_prewitt(image, 1.0, False), ref_fourier_prewitt(image, 1.0, False)
    )
    assert filters.canny(image).shape == shape


def test_canny_rejects_inverted_thresholds():
    with pytest.raises(ValueError, match="low_threshold"):
        filters.canny(np.ones((8, 8)), 1.0, low_threshold=50, high_threshold=10)


def test_public_api_is_reexported():
    for name in (
        "laplace_of_gaussian",
        "gaussian_gradient_magnitude",
        "sobel_magnitude",
        "fourier_prewitt",
        "canny",
        "threshold_mask",
        "normalize",
        "image_statistics",
    ):
        assert callable(getattr(napari_xray, name))


@pytest.mark.parametrize("dtype", ["u1", "u2", "i2", "f4", "f8", ">f8", "i4", "u4"])
@pytest.mark.parametrize(
    "threshold", [-1e12, -70000, -5, 0, 0.5, 149.5, 150, 254.99, 255, 300, 70000, 2.0**31, 1e12]
)
def test_keep_mask_equals_np_where_for_every_dtype_and_threshold(dtype, threshold):
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, (2, 17, 23)).astype(dtype)
    if np.dtype(dtype).kind in "iu" and np.dtype(dtype).itemsize >= 2:
        image = image.astype(np.int64) * 255 - (60000 if np.dtype(dtype).kind == "i" else 0)
        image = np.clip(image, np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
    kept = filters.threshold_mask(image, threshold, "keep")
    assert kept.dtype == image.dtype.newbyteorder("=")
    np.testing.assert_array_equal(kept, np.where(image > threshold, image, 0))


@pytest.mark.parametrize("dtype", ["u1", "u2", "i2", "f4", "f8", ">f8", "i4", "u4", "i8", "?"])
@pytest.mark.parametrize(
    "threshold", [-1e12, -70000, -5, 0, 0.5, 149.5, 150, 254.99, 255, 300, 70000, 2.0**31, 1e12]
)
def test_binary_mask_equals_numpy_for_every_dtype_and_threshold(dtype, threshold):
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (2, 17, 23)).astype(dtype)
    if np.dtype(dtype).kind in "iu" and np.dtype(dtype).itemsize >= 2:
        image = image.astype(np.int64) * 255 - (60000 if np.dtype(dtype).kind == "i" else 0)
        image = np.clip(image, np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
    binary = filters.threshold_mask(image, threshold, "binary")
    assert binary.dtype == bool
    np.testing.assert_array_equal(binary, image > threshold)


# --------------------------------------------------------------------------- the fused pipeline

PIPELINE_SET = [
    ("log", {"sigma": 1.0}),
    ("gradient", {"sigma": 2.0}),
    ("sobel", {}),
    ("prewitt", {"sigma": 1.0}),
    ("canny", {"sigma": 2.0}),
    ("mask", {"threshold": 150.0, "mode": "keep"}),
    ("mask", {"threshold": 150.0, "mode": "binary"}),
]


def _tall_frames(count=3, shape=(300, 170)):
    """Frames tall enough to be cut into several row bands, with edges and noise."""
    rng = np.random.default_rng(8)
    base = ndimage.gaussian_filter(rng.random((count, *shape)), (0, 3, 3))
    base = (base - base.min()) / np.ptp(base) * 230 + rng.integers(0, 20, (count, *shape))
    base[:, 60:140, 40:120] += 25
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("threads", [1, 2])
def test_pipeline_equals_each_operation_bit_for_bit(threads):
    from napari_xray.engine.pipeline import run_operations

    stack = _tall_frames()
    results = run_operations(stack, PIPELINE_SET, threads=threads)
    for (key, params), result in zip(PIPELINE_SET, results, strict=True):
        expected = OPERATIONS[key](stack, **params)
        assert result.dtype == expected.dtype and result.shape == stack.shape, key
        np.testing.assert_array_equal(result, expected, err_msg=key)
    single = run_operations(stack[1], PIPELINE_SET, threads=threads)
    for (key, _), result, whole in zip(PIPELINE_SET, single, results, strict=True):
        np.testing.assert_array_equal(result, whole[1], err_msg=f"{key}: 2D frame vs stack")


def test_pipeline_reuses_outputs_and_shares_repeated_operations():
    from napari_xray.engine.pipeline import run_operations

    stack = _tall_frames(2)
    first = run_operations(stack, [("sobel", {}), ("log", {}), ("sobel", {"normalize": True})])
    assert first[0] is first[2]
    out = [np.full_like(first[0], np.nan), None, np.full_like(first[0], np.nan)]
    again = run_operations(stack, [("sobel", {}), ("log", {}), ("sobel", {})], out=out)
    assert again[0] is out[0]
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], first[1])


def test_pipeline_rejects_bad_outputs_and_unknown_operations():
    from napari_xray.engine.pipeline import run_operations

    stack = _tall_frames(2)
    with pytest.raises(ValueError, match="float32"):
        run_operations(stack, [("log", {})], out=[np.empty(stack.shape, np.float64)])
    with pytest.raises(ValueError, match="shape"):
        run_operations(stack, [("log", {})], out=[np.empty((1, 5, 5), np.float32)])
    with pytest.raises(ValueError, match="C-contiguous"):
        run_operations(
            stack, [("log", {})], out=[np.empty(stack.shape[::-1], np.float32).transpose()]
        )
    with pytest.raises(ValueError, match="overlaps"):
        run_operations(stack, [("mask", {})], out=[stack])
    with pytest.raises(ValueError, match="2 arrays"):
        run_operations(stack, [("log", {})], out=[None, None])
    with pytest.raises(KeyError, match="unknown operation"):
        run_operations(stack, [("blur", {})])
    with pytest.raises(KeyError, match="no parameter"):
        run_operations(stack, [("log", {"radius": 2})])


def test_results_do_not_depend_on_where_the_outputs_lie_in_memory():
    """Some OpenCV/IPP kernels round differently by address; frames of a stack lie anywhere."""
    from napari_xray.engine.pipeline import run_operations

    stack = _tall_frames(2)
    keys = [(key, params) for key, params in PIPELINE_SET if key != "mask"]
    reference = run_operations(stack, keys)
    for offset in (4, 8, 12, 20, 36):
        outs = []
        for result in reference:
            raw = np.empty(result.nbytes + 128, np.uint8)
            start = (-raw.ctypes.data) % 64 + offset
            outs.append(raw[start : start + result.nbytes].view(result.dtype).reshape(result.shape))
        again = run_operations(stack, keys, out=outs)
        for (key, _), result, expected in zip(keys, again, reference, strict=True):
            np.testing.assert_array_equal(result, expected, err_msg=f"{key}, offset {offset}")


@pytest.mark.parametrize("height", [127, 128, 129, 200, 255, 256, 257, 390])
def test_row_bands_give_the_whole_frame_result(height):
    """Band edges at every position: the filters still match SciPy on every row."""
    frame = _tall_frames(1, (height, 96))[0]
    assert_close_to_reference(filters.laplace_of_gaussian(frame, 1.0), ref_log(frame, 1.0))
    assert_close_to_reference(filters.sobel_magnitude(frame, False), ref_sobel(frame, False))
    assert_close_to_reference(
        filters.fourier_prewitt(frame, 1.0, False), ref_fourier_prewitt(frame, 1.0, False)
    )
    reference = skimage_feature.canny(frame, 2.0, 25.5, 51.0, mode="reflect")
    assert dice(filters.canny(frame, 2.0), reference) >= 0.999


def test_pool_workers_run_opencv_in_their_own_thread_and_hand_its_threads_back():
    """Two workers and OpenCV's own pool would put two threads on every core."""
    import threading

    from napari_xray.engine import _frames

    before = cv2.getNumThreads()
    seen = []

    def task():
        seen.append((cv2.getNumThreads(), _frames.sharing_the_cores()))
        time.sleep(0.05)  # both workers busy at once

    _frames.run_tasks([task] * 4, threads=2)
    assert seen == [(1, True)] * 4
    assert cv2.getNumThreads() == before
    _frames.run_tasks([task] * 2, threads=1)  # in the calling thread: OpenCV left alone
    assert seen[4:] == [(before, False)] * 2

    # Calls from several threads at once: OpenCV gets its threads back after the last.
    callers = [threading.Thread(target=_frames.run_tasks, args=([task] * 4, 2))
               for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert all(entry == (1, True) for entry in seen[6:]) and len(seen) == 18
    assert cv2.getNumThreads() == before
