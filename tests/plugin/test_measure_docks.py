"""The Line profile and ROI statistics docks, opened from napari's menu on the series
sample, with lines and regions drawn by real mouse drags on the canvas: the plotted
profiles and the table are checked against scikit-image (``profile_line``,
``skimage.draw`` masks with NumPy's figures) and the pixel sizes against the entry
file's own numbers."""

from __future__ import annotations

import csv
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from skimage import draw
from skimage.measure import profile_line

import napari_xray as nx

pytestmark = pytest.mark.viewer

WAIT_MS = 20_000
RELEASED = Path(str(files("napari_xray") / "sample_data" / "Data_Entry_2017_patient11.csv"))


def _pixel_size(frame: int) -> tuple[float, float]:
    """(down, across) mm of a sample frame, from the entry file's original size and spacing."""
    with RELEASED.open(newline="") as handle:
        fields = list(csv.reader(handle))[1 + frame]
    width, height, x, y = (float(v) for v in fields[7:11])
    return y * height / 1024, x * width / 1024


def _send(widget, kind, position, button, buttons):
    from qtpy.QtCore import QPointF, Qt
    from qtpy.QtGui import QMouseEvent
    from qtpy.QtWidgets import QApplication

    local = QPointF(*position)
    event = QMouseEvent(kind, local, widget.mapToGlobal(local), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def _left_drag(qtbot, viewer, start, end, steps=6, before_release=None):
    """Press at ``start``, move to ``end`` (fractions of the canvas) and release."""
    from qtpy.QtCore import QEvent, Qt

    canvas = viewer.window._qt_viewer.canvas.native
    size = np.array([canvas.width(), canvas.height()], float)
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    points = [tuple(size * (np.asarray(start) + (np.asarray(end) - start) * t))
              for t in np.linspace(0, 1, steps + 1)]
    _send(canvas, QEvent.Type.MouseButtonPress, points[0], left, left)
    for point in points[1:]:
        _send(canvas, QEvent.Type.MouseMove, point, none, left)
        qtbot.wait(10)
    if before_release is not None:
        before_release()
    _send(canvas, QEvent.Type.MouseButtonRelease, points[-1], left, none)
    qtbot.wait(10)


def _menu_action(menu, *path):
    """The action at ``path`` of napari's Qt menus (submenus opened as a user would)."""
    for text in path[:-1]:
        for action in menu.actions():
            if action.menu() is not None and action.text().replace("&", "") == text:
                action.menu().aboutToShow.emit()
                menu = action.menu()
                break
        else:
            raise AssertionError(f"no submenu {text!r} in {[a.text() for a in menu.actions()]}")
    for action in menu.actions():  # napari adds the plugin's name: "Line profile (napari-xray)"
        if action.text().replace("&", "") in (path[-1], f"{path[-1]} (napari-xray)"):
            return action
    raise AssertionError(f"no item {path[-1]!r} in {[a.text() for a in menu.actions()]}")


def _expected_profile(layer, frame, vertices, width=1):
    plane = np.asarray(layer.data[frame], dtype=np.float64)
    return profile_line(plane, vertices[0], vertices[1], linewidth=width, mode="reflect")


def _rows_of(path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.mark.realdata
def test_line_profile_from_the_menu_follows_the_line_the_slider_and_the_results(
    make_napari_viewer, qtbot, tmp_path
):
    from napari.layers import Shapes
    from PIL import Image as PILImage
    from qtpy.QtCore import Qt

    from napari_xray.plugin.widgets import LineProfileWidget

    viewer = make_napari_viewer()
    (series,) = viewer.open_sample("napari-xray", "series")
    log = nx.add_filter(viewer, series, "log", sigma=3.0)
    gradient = nx.add_filter(viewer, series, "gradient", sigma=2.0)

    # Layers ▸ Measure ▸ X-ray ▸ Line profile
    _menu_action(viewer.window.layers_menu, "Measure", "X-ray", "Line profile").trigger()
    (dock,) = [w for w in viewer.window.dock_widgets.values()
               if isinstance(w, LineProfileWidget)]
    assert dock.image_layer is series
    assert dock.profile is None and "Draw a line" in dock.status

    qtbot.mouseClick(dock._draw, Qt.MouseButton.LeftButton)
    lines = dock.shapes_layer
    assert isinstance(lines, Shapes) and lines.ndim == 2 and lines.mode == "add_line"
    assert viewer.layers.selection.active is lines
    _left_drag(qtbot, viewer, (0.3, 0.45), (0.7, 0.55))
    assert len(lines.data) == 1 and lines.shape_type == ["line"]
    qtbot.waitUntil(lambda: dock.profile is not None, timeout=WAIT_MS)

    def check(frame):
        profile = dock.profile
        vertices = np.asarray(lines.data[0])
        assert profile["frame"] == frame == viewer.dims.current_step[0]
        assert list(profile["columns"]) == [series.name, log.name, gradient.name]
        for layer in (series, log, gradient):
            np.testing.assert_allclose(profile["columns"][layer.name],
                                       _expected_profile(layer, frame, vertices), rtol=1e-12)
        down, across = _pixel_size(frame)
        (d_row, d_col) = vertices[1] - vertices[0]
        assert profile["unit"] == "mm"
        assert profile["distance"][-1] == pytest.approx(np.hypot(d_row * down, d_col * across))
        (length,) = dock.lengths
        assert length["length"] == pytest.approx(np.hypot(d_row * down, d_col * across))
        assert dock._table.item(0, 3).text() == f"{length['length']:.2f} mm"
        # What the plot shows: each curve scaled to its own range, and the LoG's zero
        # level (where its zero crossings, the edges, lie) dotted.
        axis = dock._figure.axes[0]
        curves = [line for line in axis.lines if not line.get_label().startswith("_")]
        for curve, values in zip(curves, profile["columns"].values(), strict=True):
            low, high = values.min(), values.max()
            np.testing.assert_allclose(curve.get_ydata(), (values - low) / (high - low))
        (zero,) = [line for line in axis.lines if line.get_linestyle() == ":"]
        values = profile["columns"][log.name]
        assert zero.get_ydata()[0] == pytest.approx(-values.min() / np.ptp(values))

    check(4)  # napari opens the stack at its middle frame
    viewer.dims.set_current_step(0, 1)
    qtbot.waitUntil(lambda: dock.profile["frame"] == 1, timeout=WAIT_MS)
    check(1)

    # Moving the line: the profile follows while the mouse is still down.
    lines.mode = "select"
    lines.selected_data = {0}
    before = np.asarray(lines.data[0]).copy()
    seen = []

    def mid_drag():
        qtbot.waitUntil(lambda: not np.array_equal(lines.data[0], before), timeout=WAIT_MS)
        qtbot.wait(100)
        seen.append((np.asarray(lines.data[0]).copy(), dock.profile["columns"][series.name]))

    _left_drag(qtbot, viewer, (0.5, 0.5), (0.5, 0.6), before_release=mid_drag)
    moved, values = seen[0]
    assert not np.array_equal(moved, before)
    np.testing.assert_allclose(values, _expected_profile(series, 1, moved), rtol=1e-12)
    qtbot.waitUntil(lambda: np.allclose(dock.profile["columns"][series.name],
                                        _expected_profile(series, 1, lines.data[0])),
                    timeout=WAIT_MS)
    check(1)

    # Each layer in its own units: one plot each, the raw values.
    dock.scaled = False
    qtbot.waitUntil(lambda: len(dock._figure.axes) == 3, timeout=WAIT_MS)
    for axis, values in zip(dock._figure.axes, dock.profile["columns"].values(), strict=True):
        np.testing.assert_array_equal(axis.lines[0].get_ydata(), values)
    assert [line.get_ydata()[0] for line in dock._figure.axes[1].lines[1:]] == [0.0]

    # Width: the mean across 5 pixels, as skimage's linewidth.
    dock.width = 5
    qtbot.waitUntil(lambda: dock.profile["width"] == 5, timeout=WAIT_MS)
    np.testing.assert_allclose(dock.profile["columns"][log.name],
                               _expected_profile(log, 1, lines.data[0], width=5), rtol=1e-12)

    # Exports: the CSV holds every value at full precision; the PNG says what it shows.
    dock.export_csv(tmp_path / "profile.csv")
    rows = _rows_of(tmp_path / "profile.csv")
    assert rows[0] == ["distance_mm", series.name, log.name, gradient.name]
    table = np.array(rows[1:], float)
    np.testing.assert_array_equal(table[:, 0], dock.profile["distance"])
    np.testing.assert_array_equal(table[:, 2], dock.profile["columns"][log.name])
    dock.export_png(tmp_path / "profile.png")
    with PILImage.open(tmp_path / "profile.png") as picture:
        assert picture.size == (900, 450)
        assert picture.text["Title"] == f"{series.name} frame 1: shape 0"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        dock.export_csv(tmp_path / "missing" / "profile.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.csv", "profile.png"]


@pytest.mark.realdata
def test_roi_statistics_from_the_menu_follow_the_regions_the_slider_and_the_choice(
    make_napari_viewer, qtbot, tmp_path
):
    from qtpy.QtCore import Qt

    viewer = make_napari_viewer()
    (series,) = viewer.open_sample("napari-xray", "series")
    log = nx.add_filter(viewer, series, "log", sigma=3.0)
    _dock, dock = viewer.window.add_plugin_dock_widget("napari-xray", "ROI statistics")
    assert dock.image_layer is series and dock.rows == []

    qtbot.mouseClick(dock._draw, Qt.MouseButton.LeftButton)
    regions = dock.shapes_layer
    assert regions.mode == "add_rectangle" and regions.ndim == 2
    _left_drag(qtbot, viewer, (0.3, 0.3), (0.45, 0.5))
    regions.mode = "add_ellipse"
    _left_drag(qtbot, viewer, (0.55, 0.4), (0.7, 0.65))
    regions.add_polygons([np.array([[600.2, 100.3], [620.5, 300.1], [800.7, 350.2],
                                    [950.1, 250.6], [780.9, 60.3]])])
    assert regions.shape_type == ["rectangle", "ellipse", "polygon"]

    def masks():
        shape = series.data.shape[1:]
        found = []
        for vertices, kind in zip(regions.data, regions.shape_type, strict=True):
            vertices = np.asarray(vertices)
            if kind == "ellipse":
                centre = vertices.mean(axis=0)
                radii = (vertices.max(axis=0) - vertices.min(axis=0)) / 2
                found.append(draw.ellipse(*centre, *radii, shape=shape))
            else:
                found.append(draw.polygon(vertices[:, 0], vertices[:, 1], shape))
        return found

    def check(frame, layers):
        qtbot.waitUntil(lambda: not dock.stack_pending, timeout=WAIT_MS)
        down, across = _pixel_size(frame)
        expected = []
        for roi, pixels in enumerate(masks()):
            for layer in layers:
                for where, values in ((frame, layer.data[frame][pixels]),
                                      ("stack", layer.data[:, pixels[0], pixels[1]])):
                    values = np.asarray(values, np.float64).ravel()
                    expected.append((roi, layer.name, where, values))
        assert [(r["roi"], r["layer"], r["frame"]) for r in dock.rows] == [
            e[:3] for e in expected]
        for row, (_, _, where, values) in zip(dock.rows, expected, strict=True):
            assert row["count"] == values.size
            for name, figure in (("mean", np.mean), ("std", np.std), ("min", np.min),
                                 ("max", np.max), ("median", np.median)):
                assert row[name] == pytest.approx(figure(values), rel=1e-12, abs=1e-12)
            if where == "stack":  # the frames' pixel sizes differ: no one area in mm²
                assert row["area_mm2"] is None and row["area_px"] * 9 == values.size
            else:
                assert row["area_mm2"] == pytest.approx(values.size * down * across)
        assert dock._table.rowCount() == len(expected)

    check(4, [series, log])
    viewer.dims.set_current_step(0, 7)
    qtbot.waitUntil(lambda: bool(dock.rows) and dock.rows[0]["frame"] == 7, timeout=WAIT_MS)
    check(7, [series, log])

    # Moving a region: the table follows.
    rectangle = np.asarray(regions.data[0])
    moved = rectangle + (40, -25)
    regions.data = [moved, *regions.data[1:]]
    (rows, cols) = draw.polygon(moved[:, 0], moved[:, 1], series.data.shape[1:])
    moved_mean = series.data[7][rows, cols].mean()
    qtbot.waitUntil(lambda: dock.rows[0]["mean"] == pytest.approx(moved_mean), timeout=WAIT_MS)
    check(7, [series, log])

    # The LoG again with another σ: napari-xray refills the same layer, and the stack's
    # figures are computed again.
    nx.add_filter(viewer, series, "log", sigma=5.0)
    assert log.metadata["napari_xray"]["parameters"]["sigma"] == 5.0
    qtbot.waitUntil(lambda: dock.rows[2]["layer"] == log.name and dock.rows[3]["mean"]
                    == pytest.approx(float(np.mean(log.data[:, rows, cols], dtype=np.float64))),
                    timeout=WAIT_MS)
    check(7, [series, log])

    # Renaming the image: its results follow it, and the rows say the new names.
    series.name = "patient 11"
    qtbot.waitUntil(lambda: dock.rows[0]["layer"] == "patient 11", timeout=WAIT_MS)
    assert log.metadata["napari_xray"]["input_layer"] == "patient 11"
    check(7, [series, log])

    # A projection napari makes of a result is not a result of the stack.
    projection = viewer.add_image(log.data.max(axis=0), name="max projection",
                                  metadata={"napari_xray": dict(log.metadata["napari_xray"])})
    dock.schedule()
    qtbot.wait(100)
    assert projection.name not in {row["layer"] for row in dock.rows}

    # Leaving the LoG out; the scripting function gives the same figures.
    dock.set_layer_measured(log, False)
    qtbot.waitUntil(lambda: all(r["layer"] == series.name for r in dock.rows), timeout=WAIT_MS)
    check(7, [series])
    scripted = nx.roi_statistics(series.data[7], regions.data, regions.shape_type,
                                 spacing=_pixel_size(7))
    frame_rows = [r for r in dock.rows if r["frame"] == 7]
    for ours, theirs in zip(frame_rows, scripted, strict=True):
        assert {k: ours[k] for k in ("count", "mean", "median", "area_mm2")} == {
            k: theirs[k] for k in ("count", "mean", "median", "area_mm2")}

    dock.export_csv(tmp_path / "regions.csv")
    rows = _rows_of(tmp_path / "regions.csv")
    assert rows[0][:4] == ["roi", "shape_type", "layer", "frame"]
    assert [row[3] for row in rows[1:]] == [str(r["frame"]) for r in dock.rows]
    assert [float(row[7]) for row in rows[1:]] == [r["mean"] for r in dock.rows]


def test_shapes_in_their_own_coordinates_and_frames_measure_the_right_pixels(
    make_napari_viewer, qtbot
):
    """A Shapes layer of another scale is placed through the world; a shape drawn in one
    frame's plane measures that frame; a DICOM-like shared spacing gives mm."""
    rng = np.random.default_rng(7)
    stack = rng.integers(0, 4000, (3, 64, 80)).astype(np.uint16)
    viewer = make_napari_viewer()
    detector = viewer.add_image(stack, name="detector", scale=(1, 0.5, 0.25),
                                metadata={"pixel_spacing": (0.5, 0.25)})
    # World coordinates (mm): the line from (5, 2.5) to (25, 17.5) mm, drawn in frame 2.
    shapes = viewer.add_shapes(ndim=3, name="marks")
    shapes.add_lines(np.array([[2, 5.0, 2.5], [2, 25.0, 17.5]]))
    shapes.add_rectangles(np.array([[2, 4.0, 2.0], [2, 4.0, 10.0], [2, 12.0, 10.0],
                                    [2, 12.0, 2.0]]))
    viewer.layers.selection.active = shapes  # the docks still find the image
    _dock, profile_dock = viewer.window.add_plugin_dock_widget("napari-xray", "Line profile")
    _dock, roi_dock = viewer.window.add_plugin_dock_widget("napari-xray", "ROI statistics")
    assert profile_dock.image_layer is detector and profile_dock.shapes_layer is shapes
    assert roi_dock.image_layer is detector and roi_dock.shapes_layer is shapes
    viewer.dims.set_current_step(0, 0)  # the shapes still measure their own frame, 2
    qtbot.waitUntil(lambda: profile_dock.profile is not None and bool(roi_dock.rows),
                    timeout=WAIT_MS)

    start, end = np.array([5.0, 2.5]) / (0.5, 0.25), np.array([25.0, 17.5]) / (0.5, 0.25)
    profile = profile_dock.profile
    assert profile["frame"] == 2
    np.testing.assert_allclose(profile["columns"]["detector"],
                               profile_line(stack[2].astype(float), start, end), rtol=1e-12)
    assert profile["distance"][-1] == pytest.approx(np.hypot(20.0, 15.0))

    qtbot.waitUntil(lambda: not roi_dock.stack_pending, timeout=WAIT_MS)
    frame_row, stack_row = roi_dock.rows
    rows, cols = draw.polygon([8, 8, 24, 24], [8, 40, 40, 8], stack.shape[1:])
    assert frame_row["frame"] == 2 and frame_row["count"] == rows.size
    assert frame_row["mean"] == pytest.approx(stack[2][rows, cols].mean(), rel=1e-12)
    assert frame_row["area_mm2"] == pytest.approx(rows.size * 0.5 * 0.25)
    assert stack_row["mean"] == pytest.approx(stack[:, rows, cols].mean(), rel=1e-12)
    assert stack_row["area_mm2"] == pytest.approx(rows.size * 0.5 * 0.25)


def test_the_docks_say_what_is_missing_and_measure_a_single_frame(make_napari_viewer, qtbot):
    """No image, an RGB image, no shape, a 2D frame without a pixel size: each says so
    or measures in pixels; an export with nothing to export is refused."""
    viewer = make_napari_viewer()
    _dock, profile_dock = viewer.window.add_plugin_dock_widget("napari-xray", "Line profile")
    _dock, roi_dock = viewer.window.add_plugin_dock_widget("napari-xray", "ROI statistics")
    assert "Choose an image" in profile_dock.status and "Choose an image" in roi_dock.status
    assert profile_dock.start_drawing() is None and "Choose an image first" in profile_dock.status

    colour = viewer.add_image(np.zeros((20, 30, 3), np.uint8), rgb=True, name="photo")
    qtbot.waitUntil(lambda: profile_dock.image_layer is colour, timeout=WAIT_MS)
    profile_dock.refresh()
    assert "not a grayscale" in profile_dock.status

    frame = np.arange(40 * 60, dtype=np.float32).reshape(40, 60)
    plain = viewer.add_image(frame, name="frame")
    profile_dock.image_layer = roi_dock.image_layer = plain
    qtbot.waitUntil(lambda: "Draw a line" in profile_dock.status, timeout=WAIT_MS)
    with pytest.raises(ValueError, match="draw a line first"):
        profile_dock.export_csv("unused.csv")
    with pytest.raises(ValueError, match="draw one first"):
        roi_dock.export_csv("unused.csv")

    regions = roi_dock.start_drawing()
    assert regions.name == "regions" and regions.mode == "add_rectangle"
    regions.add_ellipses(np.array([[10.0, 10.0], [10.0, 50.0], [30.0, 50.0], [30.0, 10.0]]))
    regions.add_paths(np.array([[5.0, 5.0], [5.0, 25.0], [35.0, 25.0]]))
    profile_dock.shapes_layer = regions
    qtbot.waitUntil(lambda: profile_dock.profile is not None and bool(roi_dock.rows),
                    timeout=WAIT_MS)
    profile = profile_dock.profile
    assert profile["frame"] is None and profile["unit"] == "px" and profile["shape"] == 1
    expected = np.concatenate([profile_line(frame.astype(float), (5, 5), (5, 25)),
                               profile_line(frame.astype(float), (5, 25), (35, 25))[1:]])
    np.testing.assert_allclose(profile["columns"]["frame"], expected, rtol=1e-12)
    assert profile["distance"][-1] == pytest.approx(50.0)
    assert [entry["length"] for entry in profile_dock.lengths] == [pytest.approx(50.0)]
    (row,) = roi_dock.rows  # a 2D frame: no stack row
    rows, cols = draw.ellipse(20, 30, 10, 20, shape=frame.shape)
    assert row["frame"] is None and row["count"] == rows.size and row["area_mm2"] is None
    assert row["mean"] == pytest.approx(frame[rows, cols].mean(), rel=1e-12)
