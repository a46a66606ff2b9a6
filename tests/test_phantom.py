"""Tests for the synthetic chest phantom (``napari_xray.phantom.make_phantom``).

Regions are given in the phantom's normalised coordinates: the origin is the
frame's centre, one unit is half the smaller side, x grows to the right and y
grows downwards. The boxes are well inside each structure, so the per-frame
shift (about 1% of the side) never moves them across an edge.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_xray.phantom import make_phantom

SPINE = (-0.03, 0.03, -0.60, 0.30)  # x0, x1, y0, y1: the centre column above the diaphragm
RIGHT_LUNG = (-0.55, -0.30, -0.45, 0.05)  # patient's right = image left
LEFT_LUNG = (0.33, 0.55, -0.45, 0.00)
HEART = (0.05, 0.30, 0.12, 0.32)  # left of the patient's midline = image right
ABDOMEN = (-0.50, 0.50, 0.70, 0.95)
BACKGROUND = ((-0.85, -0.50, -1.0, -0.9), (0.50, 0.85, -1.0, -0.9))  # above the shoulders
OPACITY = (-0.48, -0.36, 0.14, 0.26)  # core of the opacity, lower lung on the image's left


def region(stack: np.ndarray, box) -> np.ndarray:
    """The pixels of ``box`` (normalised x0, x1, y0, y1) in every frame, as float."""
    height, width = stack.shape[-2:]
    unit = min(height, width) / 2.0
    x0, x1, y0, y1 = box

    def to_px(v: float, n: int) -> int:
        return int(round((n - 1) / 2.0 + v * unit))

    rows = slice(to_px(y0, height), to_px(y1, height) + 1)
    cols = slice(to_px(x0, width), to_px(x1, width) + 1)
    return stack[..., rows, cols].astype(np.float64)


def frame_means(stack: np.ndarray, box) -> np.ndarray:
    """Mean of ``box`` in each frame: shape (n_frames,)."""
    return region(stack, box).mean(axis=(-2, -1))


@pytest.fixture(scope="module")
def default_stack() -> np.ndarray:
    """The default phantom, computed once for the module."""
    return make_phantom()


# -- shape, dtype, layout --------------------------------------------------------------


def test_default_shape_dtype_and_layout(default_stack):
    assert default_stack.shape == (9, 1024, 1024)
    assert default_stack.dtype == np.uint8
    assert default_stack.flags.c_contiguous


@pytest.mark.parametrize("shape", [(64, 80), (80, 64), (16, 16), (17, 33)])
def test_small_and_non_square_shapes(shape):
    stack = make_phantom(n_frames=3, shape=shape)
    assert stack.shape == (3, *shape)
    assert stack.dtype == np.uint8
    assert stack.flags.c_contiguous
    assert stack.std() > 20  # still an image, not a constant


def test_single_frame():
    stack = make_phantom(n_frames=1, shape=(64, 64))
    assert stack.shape == (1, 64, 64)


def test_numpy_integers_are_accepted():
    stack = make_phantom(n_frames=np.int64(2), shape=np.array([32, 48]))
    assert stack.shape == (2, 32, 48)


# -- determinism -----------------------------------------------------------------------


def test_same_seed_gives_same_array():
    a = make_phantom(3, (64, 80), seed=5)
    b = make_phantom(3, (64, 80), seed=5)
    np.testing.assert_array_equal(a, b)


def test_default_seed_is_zero():
    np.testing.assert_array_equal(make_phantom(2, (48, 48)), make_phantom(2, (48, 48), seed=0))


def test_different_seed_gives_different_noise():
    a = make_phantom(3, (64, 80), seed=1).astype(np.int16)
    b = make_phantom(3, (64, 80), seed=2).astype(np.int16)
    assert not np.array_equal(a, b)
    # Different noise, same anatomy: the frames differ a little, not completely.
    assert np.mean(a != b) > 0.5
    assert np.abs(a - b).mean() < 20


# -- frames differ where the opacity is, anatomy is stable ---------------------------


def test_frames_are_not_identical(default_stack):
    for i in range(len(default_stack) - 1):
        assert not np.array_equal(default_stack[i], default_stack[i + 1])


def test_opacity_grows_across_frames_while_anatomy_stays(default_stack):
    opacity = frame_means(default_stack, OPACITY)
    spine = frame_means(default_stack, SPINE)
    change = opacity[-1] - opacity[0]
    assert change > 25, opacity
    spine_range = spine.max() - spine.min()
    assert spine_range < 15, spine
    assert change > 3 * spine_range
    # Smooth: no single step carries most of the change, and the trend is upwards.
    steps = np.diff(opacity)
    assert steps.max() < 0.5 * change, opacity
    assert np.corrcoef(np.arange(len(opacity)), opacity)[0, 1] > 0.9


def test_lung_fields_are_stable_across_frames(default_stack):
    for box in (RIGHT_LUNG, LEFT_LUNG):
        means = frame_means(default_stack, box)
        assert means.max() - means.min() < 15, means


# -- anatomy sanity --------------------------------------------------------------------


def test_spine_is_brighter_than_the_lungs(default_stack):
    spine = frame_means(default_stack, SPINE)
    lungs = np.maximum(
        frame_means(default_stack, RIGHT_LUNG), frame_means(default_stack, LEFT_LUNG)
    )
    assert np.all(spine > lungs + 60), (spine, lungs)


def test_lungs_are_darker_than_the_heart(default_stack):
    heart = frame_means(default_stack, HEART)
    for box in (RIGHT_LUNG, LEFT_LUNG):
        assert np.all(frame_means(default_stack, box) < heart - 60)


def test_heart_is_left_of_patient_midline(default_stack):
    # PA view: the heart bulges into the image's right half, so at heart level the
    # image-right side just beside the spine is brighter than its mirror image.
    beside_right = frame_means(default_stack, (0.20, 0.30, 0.15, 0.30))
    beside_left = frame_means(default_stack, (-0.30, -0.20, 0.15, 0.30))
    assert np.all(beside_right > beside_left + 40)


def test_background_is_darker_than_the_body(default_stack):
    body = frame_means(default_stack, ABDOMEN)
    for box in BACKGROUND:
        background = frame_means(default_stack, box)
        assert np.all(background < 40), background
        assert np.all(body > background + 120)


def test_anatomy_holds_on_a_small_non_square_frame():
    stack = make_phantom(3, (128, 160), seed=4)
    assert np.all(frame_means(stack, SPINE) > frame_means(stack, RIGHT_LUNG) + 60)
    assert np.all(frame_means(stack, HEART) > frame_means(stack, LEFT_LUNG) + 60)
    assert np.all(frame_means(stack, ABDOMEN) > frame_means(stack, BACKGROUND[0]) + 120)


# -- intensity distribution ------------------------------------------------------------


def test_histogram_is_spread_and_not_saturated(default_stack):
    assert default_stack.std() > 30
    assert np.mean(default_stack == 255) < 0.05
    assert np.mean(default_stack == 0) < 0.20
    # Dark air and bright tissue are both present.
    assert np.mean(default_stack < 60) > 0.05
    assert np.mean(default_stack > 180) > 0.05


def test_frames_are_noisy_like_a_radiograph(default_stack):
    # Neighbouring pixels in flat soft tissue differ: there is quantum noise.
    patch = region(default_stack[:1], ABDOMEN)[0]
    noise = np.diff(patch, axis=1).std() / np.sqrt(2)
    assert 1.0 < noise < 15.0


# -- argument validation ---------------------------------------------------------------


@pytest.mark.parametrize("n_frames", [0, -1, 2.5, "9", None, True])
def test_bad_n_frames_raises(n_frames):
    with pytest.raises(ValueError, match="n_frames"):
        make_phantom(n_frames=n_frames, shape=(32, 32))


@pytest.mark.parametrize(
    "shape",
    [(15, 64), (64, 0), (64,), (64, 64, 3), (64.0, 64), "ab", None, 64, (True, 64)],
)
def test_bad_shape_raises(shape):
    with pytest.raises(ValueError, match=r"shape must be a pair of integers"):
        make_phantom(n_frames=2, shape=shape)


# -- module hygiene --------------------------------------------------------------------


def test_public_function_has_a_docstring():
    doc = make_phantom.__doc__
    assert doc and "Returns" in doc and "Raises" in doc


def test_import_pulls_in_neither_napari_nor_qt():
    code = (
        "import sys, napari_xray.phantom as p; p.make_phantom(1, (32, 32)); "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy', 'magicgui')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
