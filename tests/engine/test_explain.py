"""The claims the explain captions make, checked on the real frames against SciPy in
float64, skimage and the tutorial's code typed out again here; Canny's stages against
``canny`` and their definitions; the transfer function against ``fourier_gaussian``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.feature import canny as skimage_canny

from napari_xray.engine.explain import (
    CANNY_STAGES,
    PAIRS,
    canny_stages,
    explain_pairs,
    gaussian_transfer,
)
from napari_xray.engine.filters import canny

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def pairs(xray_stack):
    return {pair.key: pair for pair in explain_pairs(xray_stack, 1)}


def test_the_four_pairs_in_order_with_two_line_captions(pairs, xray_stack):
    assert list(pairs) == list(PAIRS)
    for pair in pairs.values():
        assert len(pair.caption) == 2 and all(len(line) > 40 for line in pair.caption)
        assert pair.tutorial.shape == pair.engine.shape == pair.difference.shape == (1024, 1024)
        if pair.key != "canny":  # (the Canny pair's map is its own: see below)
            np.testing.assert_array_equal(pair.difference, pair.tutorial - pair.engine)


def test_wraparound_the_uint8_derivatives_are_the_true_ones_modulo_256(pairs, xray_stack):
    frame = xray_stack[1]
    wrong_anywhere = np.zeros(frame.shape, bool)
    for axis in (0, 1):
        true = ndimage.sobel(frame.astype(np.float64), axis=axis)  # exact: integer sums
        literal = ndimage.sobel(frame, axis=axis)
        assert literal.dtype == np.uint8
        np.testing.assert_array_equal(literal, np.mod(true, 256).astype(np.uint8))
        outside = (true < 0) | (true > 255)
        # …and differs from the true derivative exactly where that leaves 0–255.
        np.testing.assert_array_equal(literal != true, outside)
        wrong_anywhere |= outside
    figure = pairs["wraparound"].figures["wrapped_fraction"]
    assert figure == pytest.approx(wrong_anywhere.mean())
    assert f"{figure:.0%} of this frame's pixels" in pairs["wraparound"].caption[0]
    # The float32 side is the true magnitude, scaled to 0–255.
    true = np.hypot(ndimage.sobel(frame.astype(float), 0), ndimage.sobel(frame.astype(float), 1))
    np.testing.assert_allclose(pairs["wraparound"].engine, 255 * true / true.max(), atol=1e-3)


def test_fourier_gaussian_on_pixels_only_scales_them(pairs, xray_stack):
    frame = xray_stack[1].astype(np.float64)
    pair = pairs["fourier"]
    factor = pair.tutorial[frame > 0] / frame[frame > 0]
    assert factor.min() == pytest.approx(pair.figures["smallest_factor"], abs=1e-9)
    assert factor.max() <= 1 + 1e-12 and factor.min() > 0.97
    # The same factor at every frame: it depends on the pixel's place only.
    other = xray_stack[5].astype(np.float64)
    literal = ndimage.fourier_gaussian(xray_stack[5], sigma=0.05)
    ratio_here = np.where(frame > 0, pair.tutorial / np.where(frame > 0, frame, 1), np.nan)
    ratio_there = np.where(other > 0, literal / np.where(other > 0, other, 1), np.nan)
    both = np.isfinite(ratio_here) & np.isfinite(ratio_there)
    np.testing.assert_allclose(ratio_here[both], ratio_there[both], rtol=1e-12)
    # The engine's route is a periodic Gaussian of σ = 2 (SciPy's, in float64).
    np.testing.assert_allclose(pair.engine, ndimage.gaussian_filter(frame, 2.0, mode="wrap",
                                                                    truncate=10), atol=1e-6)
    assert pair.figures["tiny_sigma_change"] < 0.5


def test_a_3d_filter_leaks_only_what_the_neighbours_add(pairs, xray_stack):
    pair = pairs["stack"]
    # The share frame 1 keeps of itself: SciPy's 9-tap Gaussian (σ = 1, truncate 4),
    # normalised, summed over the taps whose reflected frame is frame 1 itself.
    taps = np.arange(-4, 5)
    weights = np.exp(-taps**2 / 2) / np.exp(-taps**2 / 2).sum()
    def reflected(k):
        return -k - 1 if k < 0 else (2 * 9 - k - 1 if k >= 9 else k)
    own = sum(w for t, w in zip(taps, weights, strict=True) if reflected(1 + t) == 1)
    assert pair.figures["own_weight"] == pytest.approx(own, rel=1e-9)
    assert f"{own:.0%} of this frame's result" in pair.caption[0]
    assert pair.figures["frames"] == 9 and pair.figures["max_difference"] > 1
    # Nine copies of one frame: nothing different to leak, the 3-D result is the 2-D one.
    copies = np.repeat(xray_stack[1:2], 9, axis=0)
    same = {p.key: p for p in explain_pairs(copies, 1)}["stack"]
    # (what is left is float32 rounding and the truncated kernel's sum along the stack
    # axis: thousands of times less than what the real neighbours add)
    assert pair.figures["max_difference"] > 1000 * np.abs(same.difference).max()
    reference = ndimage.gaussian_laplace(xray_stack[1].astype(np.float64), 1.0)
    np.testing.assert_allclose(pair.engine, reference, atol=1e-3)
    volume = ndimage.gaussian_laplace(xray_stack.astype(np.float64), 1.0)[1]
    np.testing.assert_allclose(pair.tutorial, volume, atol=1e-3)  # the whole stack's
    last = {p.key: p for p in explain_pairs(xray_stack, 8)}["stack"]  # a window, exactly
    whole = ndimage.gaussian_laplace(xray_stack.astype(np.float32), 1.0)[8]
    np.testing.assert_array_equal(last.tutorial, whole.astype(np.float64))


def test_the_tutorials_canny_is_a_magnitude_and_canny_is_thin_edges(pairs, xray_stack):
    frame = xray_stack[1]
    # The tutorial's code, typed out again.
    fourier = ndimage.fourier_gaussian(frame, sigma=0.05)
    magnitude = np.hypot(ndimage.prewitt(fourier, axis=0), ndimage.prewitt(fourier, axis=1))
    magnitude *= 255.0 / np.max(magnitude)
    pair = pairs["canny"]
    np.testing.assert_array_equal(pair.tutorial, magnitude)
    assert pair.figures["tutorial_nonzero_fraction"] == pytest.approx((magnitude > 0).mean())
    assert pair.figures["tutorial_nonzero_fraction"] > 0.9
    edges = pair.engine > 0
    reference = skimage_canny(frame, sigma=2.0, mode="reflect")
    dice = 2 * (edges & reference).sum() / (edges.sum() + reference.sum())
    assert dice > 0.99
    assert pair.figures["edge_fraction"] == pytest.approx(edges.mean())
    np.testing.assert_array_equal(pair.difference, np.where(edges, 0, magnitude))


def test_a_single_frame_has_no_stack_pair_and_bad_input_is_refused(xray_stack):
    pairs = {p.key: p for p in explain_pairs(xray_stack[0])}
    assert pairs["stack"].tutorial is None and "single frame" in pairs["stack"].caption[1]
    assert pairs["wraparound"].tutorial is not None
    assert not pairs["wraparound"].figures["converted_to_uint8"]
    floats = {p.key: p for p in explain_pairs(xray_stack[0].astype(np.float32) / 255)}
    for key in ("wraparound", "fourier", "canny"):  # shown as the tutorial's uint8, said so
        assert floats[key].figures["converted_to_uint8"]
        assert "float32 image is shown as the uint8" in floats[key].caption[0]
    with pytest.raises(ValueError, match="out of range"):
        explain_pairs(xray_stack, 9)
    with pytest.raises(ValueError, match="real numbers"):
        explain_pairs(np.zeros((4, 4), complex))


def test_canny_stages_end_in_canny_and_each_stage_is_what_it_says(xray_stack):
    for index in (0, 4, 8):
        frame = xray_stack[index]
        stages = canny_stages(frame)
        assert tuple(stages) == CANNY_STAGES
        np.testing.assert_array_equal(stages["hysteresis"], canny(frame))
    stages = canny_stages(frame.astype(np.float32), sigma=1.5, low_threshold=4,
                          high_threshold=12)
    smoothed = ndimage.gaussian_filter(frame.astype(np.float64), 1.5, mode="reflect")
    np.testing.assert_allclose(stages["smoothed"], smoothed, atol=1e-3)
    gradient = np.hypot(ndimage.sobel(smoothed, 0), ndimage.sobel(smoothed, 1))
    np.testing.assert_allclose(stages["gradient magnitude"], gradient, atol=1e-2)
    kept = stages["non-maximum suppression"] > 0
    np.testing.assert_array_equal(stages["non-maximum suppression"][kept],
                                  stages["gradient magnitude"][kept])
    assert not (stages["strong edges"] & stages["weak edges"]).any()
    np.testing.assert_array_equal(stages["strong edges"] | stages["weak edges"], kept)
    np.testing.assert_array_equal(stages["strong edges"],
                                  kept & (stages["non-maximum suppression"] >= 12))
    # Hysteresis: the 8-connected segments of kept pixels that hold a strong one.
    labels, _ = ndimage.label(kept, structure=np.ones((3, 3)))
    holding = np.unique(labels[stages["strong edges"]])
    np.testing.assert_array_equal(stages["hysteresis"], np.isin(labels, holding[holding > 0]))


def test_the_transfer_function_is_what_fourier_gaussian_multiplies_by():
    length = 256
    for sigma in (0.05, 1.0, 3.0):
        multiplied = ndimage.fourier_gaussian(np.ones(length), sigma)  # a full FFT's order
        np.testing.assert_allclose(gaussian_transfer(sigma, np.fft.fftfreq(length)),
                                   multiplied, rtol=1e-12)
