"""Line profiles and region statistics against skimage.measure.profile_line, masks
made with skimage.draw or by direct geometry, and NumPy on the masked pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.path import Path as PolygonPath
from skimage import draw
from skimage.measure import profile_line

from napari_xray.engine.measure import (
    line_profile,
    path_length,
    path_profile,
    region_statistics,
    roi_mask,
    roi_statistics,
    roi_window,
)

SPACING = (0.336, 0.41015625)  # 00000011_001: down, across (mm)


@pytest.fixture(scope="module")
def frame(xray_stack):
    return xray_stack[1]


LINES = [
    ((100, 100), (900, 700)),      # a long diagonal
    ((512.3, 10.7), (512.3, 1000.2)),  # across, between pixel centres
    ((5, 1020), (1030, 3)),        # beyond the frame's edges: "reflect"
    ((300, 300), (300, 300)),      # one point
    ((640.5, 200.25), (610.75, 830.5)),
]


@pytest.mark.realdata
@pytest.mark.parametrize("width", [1, 3, 4])
@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize(("start", "end"), LINES)
def test_line_profile_is_skimages_profile_line(frame, start, end, width, order):
    distance, values = line_profile(frame, start, end, width=width, order=order)
    expected = profile_line(frame.astype(np.float64), start, end, linewidth=width, order=order,
                            mode="reflect")
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-9)
    length = math.hypot(end[0] - start[0], end[1] - start[1])
    assert len(distance) == len(values) == int(np.ceil(length + 1))
    assert distance[0] == 0 and distance[-1] == pytest.approx(length)


@pytest.mark.realdata
def test_distances_in_millimetres_follow_each_axis(frame):
    start, end = (100.0, 100.0), (400.0, 500.0)
    distance, _ = line_profile(frame, start, end, spacing=SPACING)
    assert distance[-1] == pytest.approx(math.hypot(300 * SPACING[0], 400 * SPACING[1]))
    np.testing.assert_allclose(np.diff(distance), distance[-1] / (len(distance) - 1))
    assert path_length([start, end], SPACING) == pytest.approx(distance[-1])
    assert path_length([start, end]) == pytest.approx(500.0)


@pytest.mark.realdata
def test_a_path_profile_runs_on_through_its_vertices(frame):
    vertices = [(100, 100), (100, 600), (700, 650)]
    distance, values = path_profile(frame, vertices, width=3, spacing=SPACING)
    first = profile_line(frame.astype(float), vertices[0], vertices[1], linewidth=3)
    second = profile_line(frame.astype(float), vertices[1], vertices[2], linewidth=3)
    np.testing.assert_allclose(values, np.concatenate([first, second[1:]]), atol=1e-9)
    assert distance[-1] == pytest.approx(path_length(vertices, SPACING))
    assert np.all(np.diff(distance) > 0)


def _stats(values):
    values = np.asarray(values, np.float64)
    return {"mean": values.mean(), "std": values.std(), "min": values.min(),
            "max": values.max(), "median": np.median(values)}


def _ellipse_corners(centre, radius_rows, radius_cols, angle=0.0):
    """napari's ellipse: the corners of its bounding box, turned by ``angle`` (rad)."""
    corners = np.array([[-radius_rows, -radius_cols], [-radius_rows, radius_cols],
                        [radius_rows, radius_cols], [radius_rows, -radius_cols]])
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return corners @ turn.T + centre


@pytest.mark.realdata
def test_region_statistics_are_numpy_on_the_regions_pixels(frame, xray_stack):
    rectangle = np.array([[10.5, 20.5], [10.5, 50.5], [30.5, 50.5], [30.5, 20.5]])
    triangle = np.array([[400.3, 100.2], [700.6, 180.9], [520.1, 420.4]])
    ellipse = _ellipse_corners((600.0, 500.0), 80.0, 120.0)
    line = np.array([[0.0, 0.0], [100.0, 100.0]])
    rows = roi_statistics(frame, [rectangle, triangle, ellipse, line],
                          ["rectangle", "polygon", "ellipse", "line"], spacing=SPACING)
    assert [row["index"] for row in rows] == [0, 1, 2]  # a line has no area

    by_slicing = np.zeros(frame.shape, bool)
    by_slicing[11:31, 21:51] = True  # pixel centres inside the half-pixel rectangle
    centres = np.stack(np.mgrid[0:1024, 0:1024], axis=-1).reshape(-1, 2)
    inside = PolygonPath(triangle).contains_points(centres).reshape(frame.shape)
    ellipse_mask = np.zeros(frame.shape, bool)
    ellipse_mask[draw.ellipse(600, 500, 80, 120, shape=frame.shape)] = True
    for row, mask in zip(rows, [by_slicing, inside, ellipse_mask], strict=True):
        assert row["count"] == row["area_px"] == mask.sum()
        assert row["area_mm2"] == pytest.approx(mask.sum() * SPACING[0] * SPACING[1])
        for key, value in _stats(frame[mask]).items():
            assert row[key] == pytest.approx(value, rel=1e-12), key

    # In one frame's plane, or over the whole stack for a 2D shape.
    in_frame_6 = np.column_stack([np.full(4, 6.0), rectangle])
    stack_rows = roi_statistics(xray_stack, [in_frame_6, rectangle], ["rectangle"] * 2)
    assert stack_rows[0]["frame"] == 6 and stack_rows[1]["frame"] is None
    assert stack_rows[0]["mean"] == pytest.approx(xray_stack[6][by_slicing].mean())
    assert stack_rows[1]["mean"] == pytest.approx(xray_stack[:, by_slicing].mean())
    assert stack_rows[1]["area_mm2"] is None


def test_a_turned_ellipse_holds_the_pixels_whose_centres_lie_inside():
    corners = _ellipse_corners((50.3, 60.7), 12.0, 30.0, angle=math.radians(30))
    mask = roi_mask(corners, "ellipse", (100, 120))
    rows, cols = np.mgrid[0:100, 0:120]
    offset_r, offset_c = rows - 50.3, cols - 60.7
    turn = math.radians(30)
    # _ellipse_corners turns (row, column) vectors: the column axis goes to
    # (-sin, cos), the row axis to (cos, sin).
    along = -offset_r * math.sin(turn) + offset_c * math.cos(turn)  # the 30-pixel radius
    across = offset_r * math.cos(turn) + offset_c * math.sin(turn)  # the 12-pixel radius
    geometric = (along / 30.0) ** 2 + (across / 12.0) ** 2 < 1
    assert abs(int(mask.sum()) - int(geometric.sum())) <= 0.02 * geometric.sum()
    assert (mask & geometric).sum() >= 0.98 * geometric.sum()


def test_bad_measurements_say_what_to_pass():
    image = np.zeros((10, 10))
    with pytest.raises(ValueError, match="width must be at least 1"):
        line_profile(image, (0, 0), (5, 5), width=0)
    with pytest.raises(ValueError, match="order must be 0"):
        line_profile(image, (0, 0), (5, 5), order=7)
    with pytest.raises(ValueError, match="one 2D frame"):
        line_profile(np.zeros((2, 10, 10)), (0, 0), (5, 5))
    with pytest.raises(ValueError, match="finite"):
        line_profile(image, (0, np.nan), (5, 5))
    with pytest.raises(ValueError, match="positive sizes"):
        line_profile(image, (0, 0), (5, 5), spacing=(0, 1))
    with pytest.raises(ValueError, match="has no area"):
        roi_mask([[0, 0], [1, 1], [2, 0]], "path", (10, 10))
    empty = roi_statistics(image, [[[20, 20], [20, 30], [30, 30], [30, 20]]], ["rectangle"])
    assert empty[0]["count"] == 0 and empty[0]["mean"] is None


@pytest.mark.parametrize("seed", range(12))
def test_masks_are_skimage_draws_on_random_regions(seed):
    rng = np.random.default_rng(seed)
    shape = (90, 110)
    count = int(rng.integers(3, 12))
    polygon = rng.uniform([-10, -10], [100, 120], (count, 2))  # may cross itself and the edges
    expected = np.zeros(shape, bool)
    expected[draw.polygon(polygon[:, 0], polygon[:, 1], shape=shape)] = True
    assert np.array_equal(roi_mask(polygon, "polygon", shape), expected)
    centre = rng.uniform([10, 10], [80, 100])
    radii = rng.uniform(3, 40, 2)
    expected = np.zeros(shape, bool)
    expected[draw.ellipse(*centre, *radii, shape=shape)] = True
    corners = _ellipse_corners(centre, *radii)
    assert np.array_equal(roi_mask(corners, "ellipse", shape), expected)


@pytest.mark.parametrize("kind", ["integer", "half", "horizontal", "collinear", "far"])
def test_masks_are_skimage_draws_with_vertices_on_pixel_centres(kind):
    """skimage counts centres on the outline as inside: vertices, edges, every side."""
    rng = np.random.default_rng(["integer", "half", "horizontal", "collinear", "far"].index(kind))
    for _ in range(60):
        shape = tuple(int(n) for n in rng.integers(3, 40, 2))
        count = int(rng.integers(3, 9))
        if kind == "far":
            polygon = rng.uniform(-300, 300, (count, 2))
        elif kind == "collinear":
            first, step = rng.integers(-3, shape[0], 2), rng.integers(-3, 4, 2)
            polygon = np.array([first + k * step for k in range(count)], float)
        else:
            division = 1 if kind == "integer" else 2
            polygon = rng.integers(-3 * division, [(shape[0] + 3) * division,
                                                   (shape[1] + 3) * division], (count, 2))
            polygon = polygon / division
            if kind == "horizontal":
                polygon[1::2, 0] = polygon[0::2, 0][: len(polygon[1::2])]
        expected = np.zeros(shape, bool)
        expected[draw.polygon(polygon[:, 0], polygon[:, 1], shape=shape)] = True
        assert np.array_equal(roi_mask(polygon, "polygon", shape), expected), polygon.tolist()


def test_order_0_profiles_pick_skimages_pixels_on_pixel_boundaries():
    image = np.arange(31 * 22, dtype=np.float64).reshape(31, 22)
    rng = np.random.default_rng(3)
    for _ in range(300):
        start, end = rng.integers(-2, 30, 2).astype(float), rng.integers(-2, 30, 2).astype(float)
        width = int(rng.integers(1, 8))
        _, values = line_profile(image, start, end, width=width, order=0)
        expected = profile_line(image, start, end, linewidth=width, order=0)
        np.testing.assert_array_equal(values, expected)


def test_odd_frames_and_shapes_are_measured_or_refused_plainly():
    half = np.linspace(0, 1, 100, dtype=np.float16).reshape(10, 10)
    _, values = line_profile(half, (0, 0), (9, 9))
    np.testing.assert_allclose(values, profile_line(half.astype(np.float64), (0, 0), (9, 9)))
    with pytest.raises(ValueError, match="real numbers"):
        line_profile(np.zeros((4, 4), complex), (0, 0), (3, 3))
    with pytest.raises(ValueError, match="one 2D frame"):
        line_profile(np.zeros((0, 5)), (0, 0), (0, 3))
    square = [[1.5, 1.5], [1.5, 4.5], [4.5, 4.5], [4.5, 1.5]]
    stack = np.ones((2, 8, 8))
    (missing,) = roi_statistics(stack, [np.column_stack([np.full(4, 5.0), square])],
                                ["rectangle"])
    assert missing["count"] == 0 and missing["mean"] is None  # frame 5 of a 2-frame stack
    (flat,) = roi_statistics(stack[0], [np.column_stack([np.full(4, 5.0), square])],
                             ["rectangle"])
    assert flat["frame"] is None and flat["count"] == 9
    (over_stack,) = roi_statistics(stack, [square], ["rectangle"])  # a 2D shape: every frame
    assert over_stack["frame"] is None and over_stack["area_px"] == 9
    assert over_stack["count"] == 2 * 9  # the pixels measured, both frames'
    assert path_length([[0, 0, 0], [0, 3, 4]]) == 5.0  # napari's (frame, row, column)
    with pytest.raises(ValueError, match="at least two"):
        path_length([[1, 2]])


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.uint16, np.int16, np.int32, np.float32,
                                   np.float64])
def test_region_figures_equal_numpy_on_float64_for_every_dtype(dtype):
    """The histogram route (bool, uint8, uint16) and the partition route give NumPy's
    figures of the region's values as float64, for odd and even counts and stacks."""
    rng = np.random.default_rng(11)
    if dtype is bool:
        stack = rng.random((3, 40, 50)) < 0.3
    elif np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        stack = rng.integers(max(info.min, -50_000), min(info.max, 70_000), (3, 40, 50),
                             endpoint=True).astype(dtype)
    else:
        stack = (rng.normal(0, 40, (3, 40, 50))).astype(dtype)
    for _ in range(25):
        polygon = rng.uniform([-5, -5], [45, 55], (int(rng.integers(3, 8)), 2))
        window = roi_window(polygon, "polygon", stack.shape[1:])
        mask = roi_mask(polygon, "polygon", stack.shape[1:])
        for data, values in ((stack[1], stack[1][mask]), (stack, stack[:, mask])):
            values = np.asarray(values, np.float64).ravel()
            figures = region_statistics(data, window)
            assert figures["count"] == values.size and figures["area_px"] == mask.sum()
            if not values.size:
                assert figures["median"] is None
                continue
            for name, reference in (("mean", np.mean), ("std", np.std), ("min", np.min),
                                    ("max", np.max), ("median", np.median)):
                assert figures[name] == pytest.approx(float(reference(values)), rel=1e-12,
                                                      abs=1e-9), name
    with_nan = np.array([[1.0, np.nan], [3.0, 4.0]])
    everything = ((slice(0, 2), slice(0, 2)), np.ones((2, 2), bool))
    assert np.isnan(region_statistics(with_nan, everything)["median"])
