"""The napari-xray widgets in real napari viewers (Qt + OpenGL under Xvfb) on the real frames.

Every widget is docked in the viewer, as napari does, and its result is compared
with the engine's on the whole stack. Most tests use three frames; the ones about
workers, the comparison and the statistics use all nine.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import napari_xray
from napari_xray.engine.filters import normalize
from napari_xray.engine.operations import COMPARISON, OPERATIONS
from napari_xray.engine.statistics import image_statistics, intensity_histogram
from napari_xray.plugin.console import add_filter, compare_all, is_comparing, restore_view
from napari_xray.plugin.hub import viewer_hub
from napari_xray.plugin.viewer import open_viewer
from napari_xray.plugin.widgets import CompareWidget, MaskWidget, StatisticsWidget
from napari_xray.plugin.widgets.operation import WIDGET_CLASSES, make_widget

pytestmark = pytest.mark.viewer

WAIT_MS = 30_000


# --------------------------------------------------------------------------- helpers


def _digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _frozen(array) -> np.ndarray:
    copy = np.array(array)
    copy.setflags(write=False)  # a write into the input would raise, not pass silently
    return copy


@pytest.fixture
def stack3(xray_stack) -> np.ndarray:
    """The first three real frames (read-only)."""
    return _frozen(xray_stack[:3])


@pytest.fixture
def stack9(xray_stack) -> np.ndarray:
    """All nine real frames (read-only)."""
    return _frozen(xray_stack)


@pytest.fixture
def slow_worker(monkeypatch):
    """Make the background worker take ~0.15 s per frame, so tests can act while it runs."""
    from napari_xray.plugin import outputs

    original = outputs._compute_frames

    def slow(data, order, jobs):
        for item in original(data, order, jobs):
            time.sleep(0.15)
            yield item

    monkeypatch.setattr(outputs, "_compute_frames", slow)


def _add_input(viewer, data, name="chest"):
    return viewer.add_image(data, name=name, scale=(1.0, 0.5, 0.5), translate=(0.0, 10.0, -5.0))


def _dock(viewer, widget, name=None):
    viewer.window.add_dock_widget(widget, name=name or type(widget).__name__)
    return widget


def _wait_idle(qtbot, busy_object):
    qtbot.waitUntil(lambda: not busy_object.busy, timeout=WAIT_MS)


def _workers_done(qtbot):
    from napari_xray.plugin.threads import running_workers

    qtbot.waitUntil(lambda: not running_workers(), timeout=WAIT_MS)


def _assert_result(layer, expected):
    from napari.layers import Image, Labels

    if expected.dtype == bool:
        assert isinstance(layer, Labels)
        assert layer.data.dtype == np.uint8
        np.testing.assert_array_equal(layer.data, expected.astype(np.uint8))
    else:
        assert isinstance(layer, Image)
        assert layer.data.dtype == expected.dtype
        np.testing.assert_array_equal(layer.data, expected)


# --------------------------------------------------------------------------- manifest and menus


def test_manifest_widget_commands_cover_exactly_the_operations():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-xray")
    commands = {command.id: command for command in manifest.contributions.commands}
    widget_commands = [widget.command for widget in manifest.contributions.widgets]
    prefix = "napari-xray.widget_"
    keys = {c.removeprefix(prefix) for c in widget_commands} - {"compare", "statistics"}
    assert keys == set(OPERATIONS), "every operation needs exactly one widget in napari.yaml"
    for key in OPERATIONS:
        module, _, attribute = commands[prefix + key].python_name.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        assert cls is WIDGET_CLASSES[key]
        assert cls.operation_key == key
    in_submenu = {item.command for item in manifest.contributions.menus["napari-xray.xray_submenu"]}
    assert in_submenu == set(widget_commands)


def test_xray_submenu_appears_under_layers_filter(make_napari_viewer):
    from app_model.types import MenuItem, SubmenuItem
    from napari._app_model import get_app_model

    viewer = make_napari_viewer()
    app = get_app_model()
    submenus = [
        item
        for item in app.menus.get_menu("napari/layers/filter")
        if isinstance(item, SubmenuItem) and item.submenu == "napari-xray.xray_submenu"
    ]
    assert len(submenus) == 1 and submenus[0].title == "X-ray"
    listed = {
        item.command.id
        for item in app.menus.get_menu("napari-xray.xray_submenu")
        if isinstance(item, MenuItem)
    }
    assert {f"napari-xray.widget_{key}" for key in OPERATIONS} | {
        "napari-xray.widget_compare",
        "napari-xray.widget_statistics",
    } <= listed

    # …and in the real Qt menu bar: Layers ▸ Filter ▸ X-ray ▸ <operation titles>
    def submenu(menu, text):
        for action in menu.actions():
            if action.menu() is not None and action.text().replace("&", "") == text:
                action.menu().aboutToShow.emit()
                return action.menu()
        raise AssertionError(f"no submenu {text!r} in {[a.text() for a in menu.actions()]}")

    xray = submenu(submenu(viewer.window.layers_menu, "Filter"), "X-ray")
    texts = " | ".join(action.text() for action in xray.actions())
    for operation in OPERATIONS.values():
        assert operation.title in texts


def test_widget_opens_from_its_menu_command(make_napari_viewer):
    from napari._app_model import get_app_model

    viewer = make_napari_viewer()
    get_app_model().commands.execute_command("napari-xray.widget_sobel").result()
    docked = [
        w for w in viewer.window.dock_widgets.values() if isinstance(w, WIDGET_CLASSES["sobel"])
    ]
    assert len(docked) == 1


# --------------------------------------------------------------------------- operation widgets


@pytest.mark.parametrize("key", list(OPERATIONS))
def test_each_widget_adds_the_engine_result(make_napari_viewer, qtbot, stack3, key):
    import napari.layers

    operation = OPERATIONS[key]
    viewer = make_napari_viewer()
    source = _add_input(viewer, stack3)
    before = _digest(stack3)
    widget = _dock(viewer, make_widget(viewer, key))
    assert widget.input_layer is source

    output = widget.run()
    assert output is not None and len(viewer.layers) == 2
    _wait_idle(qtbot, widget)

    expected = operation(stack3)
    _assert_result(output, expected)
    np.testing.assert_allclose(output.scale, source.scale)
    np.testing.assert_allclose(output.translate, source.translate)
    entry = output.metadata["napari_xray"]
    assert entry["operation"] == key
    assert entry["parameters"] == operation.defaults()
    assert entry["input_layer"] == "chest"
    assert entry["version"] == napari_xray.__version__
    assert entry["complete"] is True
    assert output.name == f"chest {operation.describe({})}"
    if isinstance(output, napari.layers.Image):
        assert output.colormap.name == operation.colormaps[0]
        low, high = float(expected.min()), float(expected.max())
        assert output.contrast_limits_range == pytest.approx([low, high])
        limits = operation.contrast_limits(expected, low, high)[0]  # percentiles for floats
        assert output.contrast_limits == pytest.approx(list(limits))
        assert low <= limits[0] < limits[1] <= high
    assert _digest(stack3) == before
    assert "Done" in widget.status


def test_rerun_reuses_its_layer_and_new_layer_keeps_the_old_one(make_napari_viewer, qtbot, stack3):
    operation = OPERATIONS["log"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    widget = _dock(viewer, make_widget(viewer, "log"))
    first = widget.run(wait=True)

    widget.set_parameters(sigma=2.0)  # auto-apply: a live preview into the same layer
    qtbot.waitUntil(lambda: first.metadata["napari_xray"]["parameters"]["sigma"] == 2.0)
    _wait_idle(qtbot, widget)
    assert widget.output_layer is first and len(viewer.layers) == 2
    np.testing.assert_array_equal(first.data, operation(stack3, sigma=2.0))
    assert first.name == "chest log sigma=2"

    widget.new_layer = True
    second = widget.run(wait=True)
    assert second is not first and len(viewer.layers) == 3
    widget.new_layer = False
    widget.set_parameters(sigma=3.0)  # updates the newest output only
    qtbot.waitUntil(lambda: second.metadata["napari_xray"]["parameters"]["sigma"] == 3.0)
    _wait_idle(qtbot, widget)
    np.testing.assert_array_equal(second.data, operation(stack3, sigma=3.0))
    np.testing.assert_array_equal(first.data, operation(stack3, sigma=2.0))
    assert len(viewer.layers) == 3


def test_colormap_choice_recolours_without_recomputing(make_napari_viewer, stack3):
    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    widget = _dock(viewer, make_widget(viewer, "sobel"))
    output = widget.run(wait=True)
    data = output.data
    assert output.colormap.name == "gray"
    widget.colormap = "hot"
    assert output.colormap.name == "hot" and output.data is data
    widget.colormap = "CMRmap"
    assert output.colormap.name == "CMRmap"


def test_mask_slider_spans_the_layer_and_binary_mode_shows_labels(
    make_napari_viewer, qtbot, stack3
):
    from napari.layers import Image, Labels

    operation = OPERATIONS["mask"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    widget = _dock(viewer, make_widget(viewer, "mask"))
    slider = widget.controls["threshold"].widget
    assert (slider.min, slider.max) == (float(stack3.min()), float(stack3.max()))

    first = widget.run(wait=True)
    assert isinstance(first, Image) and first.data.dtype == np.uint8
    position = viewer.layers.index(first)
    widget.set_parameters(mode="binary", threshold=120)
    qtbot.waitUntil(lambda: isinstance(widget.output_layer, Labels), timeout=WAIT_MS)
    _wait_idle(qtbot, widget)
    second = widget.output_layer
    assert first not in viewer.layers and len(viewer.layers) == 2
    assert viewer.layers.index(second) == position
    _assert_result(second, operation(stack3, mode="binary", threshold=120))


def test_fifty_rapid_changes_end_with_the_last_parameters(make_napari_viewer, qtbot, stack9):
    from qtpy.QtWidgets import QApplication

    operation = OPERATIONS["log"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack9)
    widget = _dock(viewer, make_widget(viewer, "log"))
    widget.run()
    for step in range(50):
        widget.set_parameters(sigma=0.5 + 0.1 * step)
        if step % 7 == 0:
            QApplication.processEvents()
    last = widget.parameters()
    assert last["sigma"] == pytest.approx(5.4)
    output = widget.output_layer
    qtbot.waitUntil(
        lambda: output.metadata["napari_xray"]["parameters"] == last and not widget.busy,
        timeout=WAIT_MS,
    )
    assert output.metadata["napari_xray"]["complete"]
    np.testing.assert_array_equal(output.data, operation(stack9, **last))
    assert len(viewer.layers) == 2


def test_frame_on_screen_comes_first_and_stale_results_are_dropped(
    make_napari_viewer, qtbot, stack9, slow_worker
):
    operation = OPERATIONS["gradient"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack9)
    viewer.dims.set_current_step(0, 4)
    widget = _dock(viewer, make_widget(viewer, "gradient"))

    output = widget.run()
    assert widget.busy  # the other frames are still being computed…
    np.testing.assert_array_equal(output.data[4], operation(stack9[4]))  # …frame 5 is shown

    outputs = widget.outputs
    stale_generation = outputs.generation
    widget.set_parameters(sigma=3.0)
    widget.run()
    # a late frame of the previous parameters arrives after the newer change
    outputs._on_frame(stale_generation, (6, [np.full(stack9.shape[1:], 1e6, np.float32)]))
    _wait_idle(qtbot, widget)
    np.testing.assert_array_equal(output.data, operation(stack9, sigma=3.0))


def test_moving_the_slider_computes_that_frame_at_once(make_napari_viewer, stack9, slow_worker):
    operation = OPERATIONS["sobel"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack9)
    viewer.dims.set_current_step(0, 0)
    widget = _dock(viewer, make_widget(viewer, "sobel"))
    output = widget.run()
    assert widget.busy
    viewer.dims.set_current_step(0, 7)  # the worker, at 0.15 s per frame, is far from frame 8
    np.testing.assert_array_equal(output.data[7], operation(stack9[7]))


@pytest.mark.parametrize(
    ("case", "phrase"),
    [
        ("none", "No image layer"),
        ("labels", "Labels layer"),
        ("points", "Points layer"),
        ("shapes", "Shapes layer"),
        ("rgb", "RGB"),
        ("4d", "4 dimensions"),
    ],
)
def test_unusable_input_says_why_and_adds_nothing(make_napari_viewer, case, phrase):
    viewer = make_napari_viewer()
    if case == "labels":
        viewer.add_labels(np.zeros((3, 64, 64), np.uint8), name="segmentation")
    elif case == "points":
        viewer.add_points([[10.0, 12.0]], name="marks")
    elif case == "shapes":
        triangle = np.array([[0, 0], [10, 10], [0, 10]])
        viewer.add_shapes([triangle], shape_type="polygon", name="outline")
    elif case == "rgb":
        viewer.add_image(np.zeros((64, 64, 3), np.uint8), rgb=True, name="photo")
    elif case == "4d":
        viewer.add_image(np.zeros((2, 3, 32, 32), np.float32), name="volume")
    count = len(viewer.layers)
    widget = _dock(viewer, make_widget(viewer, "sobel"))
    assert widget.run() is None
    assert phrase in widget.status
    assert len(viewer.layers) == count

    compare = _dock(viewer, CompareWidget(viewer))
    assert compare.toggle() is False
    assert phrase in compare.status
    assert len(viewer.layers) == count and not is_comparing(viewer)
    if case != "none":
        with pytest.raises(ValueError, match=phrase):
            add_filter(viewer, viewer.layers[-1], "sobel")


def test_rejected_parameters_say_why(make_napari_viewer, stack3):
    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    widget = _dock(viewer, make_widget(viewer, "canny"))
    widget.auto_apply = False
    widget.set_parameters(low_threshold=80.0, high_threshold=20.0)
    assert widget.run() is None
    assert "low_threshold" in widget.status
    assert len(viewer.layers) == 1


def test_input_deleted_while_the_worker_runs(make_napari_viewer, qtbot, stack9, slow_worker):
    viewer = make_napari_viewer()
    source = _add_input(viewer, stack9)
    widget = _dock(viewer, make_widget(viewer, "sobel"))
    widget.run()
    assert widget.busy and len(viewer.layers) == 2
    viewer.layers.remove(source)
    _workers_done(qtbot)
    qtbot.wait(50)
    assert len(viewer.layers) == 0, "no half-computed orphan layer may stay or appear"
    assert "removed" in widget.status
    assert widget.run() is None and "No image layer" in widget.status


def test_output_deleted_while_the_worker_runs(make_napari_viewer, qtbot, stack9, slow_worker):
    operation = OPERATIONS["log"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack9)
    widget = _dock(viewer, make_widget(viewer, "log"))
    output = widget.run()
    assert widget.busy
    viewer.layers.remove(output)
    assert not widget.busy
    _workers_done(qtbot)
    assert len(viewer.layers) == 1
    again = widget.run(wait=True)
    assert again is not output and len(viewer.layers) == 2
    np.testing.assert_array_equal(again.data, operation(stack9))


def test_closing_the_viewer_mid_computation(make_napari_viewer, qtbot, stack9, slow_worker):
    viewer = make_napari_viewer()
    _add_input(viewer, stack9)
    widget = _dock(viewer, make_widget(viewer, "prewitt"))
    widget.run()
    compare_all(viewer, wait=False)
    assert widget.busy
    viewer.close()
    _workers_done(qtbot)  # the workers notice, stop, and nothing raises
    qtbot.wait(100)


def test_input_data_is_never_changed(make_napari_viewer, qtbot, xray_stack):
    data = np.array(xray_stack[:3])  # writable: a stray in-place write would go unnoticed
    before = _digest(data)
    viewer = make_napari_viewer()
    source = _add_input(viewer, data)
    for key in OPERATIONS:
        add_filter(viewer, source, key)
    compare_all(viewer, source)
    restore_view(viewer)
    assert _digest(data) == before


# --------------------------------------------------------------------------- compare all


def test_panel_titles_and_presentation_come_from_the_operations():
    from napari_xray.engine.operations import ComparisonPanel

    assert [panel.title for panel in COMPARISON] == [
        "Original",
        "Laplacian of Gaussian (σ=1)",
        "Gaussian gradient (σ=2)",
        "Sobel",
        "Sobel (hot)",
        "Fourier-Prewitt (σ=1)",
        "Canny (σ=2)",
        "Mask > 150 (values)",
        "Mask > 150 (binary)",
    ]
    assert ComparisonPanel("log", {"sigma": 2.5}).title == "Laplacian of Gaussian (σ=2.5)"
    assert ComparisonPanel("sobel", {"normalize": False}).title == "Sobel (normalize off)"
    assert ComparisonPanel("mask", {"threshold": 99}).title == "Mask > 99 (values)"
    for panel in COMPARISON[1:]:
        assert panel.colormap in OPERATIONS[panel.key].colormaps
    assert OPERATIONS["canny"].presentation(bool) == ("labels", np.dtype(np.uint8))
    assert OPERATIONS["log"].presentation(np.float32) == ("image", np.dtype(np.float32))


def test_compare_all_shows_the_set_in_grid_view_and_restores(make_napari_viewer, qtbot, stack9):
    viewer = make_napari_viewer()
    source = _add_input(viewer, stack9)
    marks = viewer.add_points([[4, 100.0, 100.0]], name="marks")
    grid = viewer.canvas.grid
    grid.stride = 2
    before = (grid.enabled, grid.stride, tuple(grid.shape))
    camera = (tuple(viewer.scene.camera.center), viewer.scene.camera.zoom)
    widget = _dock(viewer, CompareWidget(viewer))
    widget.input_layer = source

    assert widget.toggle() is True
    assert grid.enabled and grid.stride == 1
    outputs = viewer_hub(viewer).comparison.outputs
    _wait_idle(qtbot, outputs)
    panels = [layer for layer in viewer.layers if layer.visible]
    assert len(panels) == len(COMPARISON) and panels[0] is source and not marks.visible
    for panel, layer in zip(COMPARISON[1:], panels[1:], strict=True):
        assert layer.name == panel.title
        assert layer.metadata["napari_xray"]["input_layer"] == "chest"
        assert layer.name_overlay.visible
        _assert_result(layer, OPERATIONS[panel.key](stack9, **panel.params))
        if hasattr(layer, "contrast_limits"):
            assert layer.colormap.name == panel.colormap
    sobel_gray, sobel_hot = panels[3], panels[4]
    assert sobel_gray.data is sobel_hot.data  # one array, two colormaps
    viewer.dims.set_current_step(0, 6)
    from napari_xray.plugin.layers import displayed_frame

    assert {displayed_frame(viewer, layer) for layer in panels} == {6}
    assert "Restore" in widget._toggle_button.text

    assert widget.toggle() is False
    assert list(viewer.layers) == [source, marks]
    assert marks.visible and not source.name_overlay.visible
    assert (grid.enabled, grid.stride, tuple(grid.shape)) == before
    assert (tuple(viewer.scene.camera.center), viewer.scene.camera.zoom) == camera
    assert widget._toggle_button.text == "Compare all"


def test_compare_grid_png_is_written_and_shows_distinct_panels(
    make_napari_viewer, stack9, tmp_path
):
    import imageio.v3 as iio

    viewer = make_napari_viewer(show=True)
    source = _add_input(viewer, stack9)
    widget = _dock(viewer, CompareWidget(viewer))
    compare_all(viewer, source)
    path = widget.save_grid_png(tmp_path / "grid.png")
    image = iio.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    gray = image[..., :3].astype(np.float64).mean(axis=-1)
    assert gray.std() > 20, "the screenshot is blank or uniform"
    rows, cols = 3, 3
    height, width = gray.shape[0] // rows, gray.shape[1] // cols
    cells = [
        gray[r * height : (r + 1) * height, c * width : (c + 1) * width]
        for r in range(rows)
        for c in range(cols)
    ]
    lit = [cell for cell in cells if cell.mean() > 3]
    assert len(lit) >= 8, "most panels of the 3×3 grid should show something"
    assert len({round(cell.mean()) for cell in lit}) >= 6, "panels should differ"


# --------------------------------------------------------------------------- statistics


def test_statistics_follow_the_frame_the_layer_and_the_mask_threshold(
    make_napari_viewer, qtbot, stack9
):
    viewer = make_napari_viewer()
    source = _add_input(viewer, stack9)
    stats = _dock(viewer, StatisticsWidget(viewer))
    viewer.layers.selection.active = source
    viewer.dims.set_current_step(0, 1)  # the tutorial's frame 00000011_001
    expected = image_statistics(stack9[1])
    qtbot.waitUntil(lambda: stats.frame_statistics == expected, timeout=WAIT_MS)
    assert expected["mean"] == 172.52233219146729 and expected["median"] == 195.0
    qtbot.waitUntil(lambda: stats.stack_statistics == image_statistics(stack9), timeout=WAIT_MS)
    assert stats._table.item(3, 0).text() == "172.522"  # mean of the frame
    counts, edges = intensity_histogram(stack9[1])
    values, drawn_edges = stats._axes.patches[0].get_data()[:2]
    np.testing.assert_array_equal(values, counts)
    np.testing.assert_allclose(drawn_edges, edges)

    viewer.dims.set_current_step(0, 5)
    qtbot.waitUntil(lambda: stats.frame_statistics == image_statistics(stack9[5]), timeout=WAIT_MS)

    assert stats.threshold == OPERATIONS["mask"].defaults()["threshold"]
    mask = _dock(viewer, MaskWidget(viewer))
    mask.auto_apply = False
    mask.set_parameters(threshold=99.0)
    assert stats.threshold == 99.0
    assert stats._axes.lines[-1].get_xdata()[0] == 99.0

    points = viewer.add_points([[1, 2, 3]], name="marks")
    viewer.layers.selection.active = points
    assert stats.frame_statistics is None and "Points layer" in stats._title.text()


def test_statistics_follow_a_live_output(make_napari_viewer, qtbot, stack3):
    operation = OPERATIONS["log"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    stats = _dock(viewer, StatisticsWidget(viewer))
    widget = _dock(viewer, make_widget(viewer, "log"))
    output = widget.run(wait=True)
    viewer.layers.selection.active = output
    expected = image_statistics(operation(stack3))
    qtbot.waitUntil(lambda: stats.stack_statistics == expected, timeout=WAIT_MS)
    widget.set_parameters(sigma=2.0)  # a live preview rewrites the layer's data in place
    expected = image_statistics(operation(stack3, sigma=2.0))
    qtbot.waitUntil(lambda: stats.stack_statistics == expected, timeout=WAIT_MS)
    frame = operation(stack3[1], sigma=2.0)
    assert stats.frame_statistics == image_statistics(frame)


# --------------------------------------------------------------------------- console and export


def test_console_add_filter_and_compare_all(make_napari_viewer, stack3):
    viewer = make_napari_viewer()
    source = _add_input(viewer, stack3)
    sobel = napari_xray.add_filter(viewer, source, "sobel", normalize=False)
    np.testing.assert_array_equal(sobel.data, OPERATIONS["sobel"](stack3, normalize=False))
    again = napari_xray.add_filter(viewer, source, "sobel", normalize=True)
    assert again is sobel and len(viewer.layers) == 2
    np.testing.assert_array_equal(sobel.data, OPERATIONS["sobel"](stack3))
    extra = napari_xray.add_filter(viewer, source, "sobel", new_layer=True, colormap="hot")
    assert extra is not sobel and extra.colormap.name == "hot" and len(viewer.layers) == 3
    with pytest.raises(KeyError, match="sigma"):
        napari_xray.add_filter(viewer, source, "sobel", sigma=2)

    panels = napari_xray.compare_all(viewer, source)
    assert len(panels) == len(COMPARISON) and viewer.canvas.grid.enabled
    assert restore_view(viewer) and not viewer.canvas.grid.enabled
    assert len(viewer.layers) == 3


def test_console_forgets_calls_whose_layers_are_gone(make_napari_viewer, stack3):
    from napari_xray.plugin.hub import viewer_hub

    viewer = make_napari_viewer()
    source = _add_input(viewer, stack3)
    log = napari_xray.add_filter(viewer, source, "log")
    viewer.layers.remove(log)
    napari_xray.add_filter(viewer, source, "sobel")
    assert [key for _, key in viewer_hub(viewer).console] == ["sobel"]


def test_gif_button_round_trips_nine_frames(make_napari_viewer, stack9, tmp_path):
    import imageio.v3 as iio

    viewer = make_napari_viewer()
    source = _add_input(viewer, stack9)
    widget = _dock(viewer, CompareWidget(viewer))
    widget.gif_duration = 0.25
    viewer.layers.selection.active = source
    path = widget.save_gif(tmp_path / "series.gif")
    frames = iio.imread(path, index=None)
    assert frames.shape[0] == 9
    gray = frames if frames.ndim == 3 else frames[..., 0]
    np.testing.assert_array_equal(gray, np.rint(normalize(stack9)).astype(np.uint8))
    assert iio.immeta(path, index=0)["duration"] == 250
    assert "Saved" in widget.status


def test_napari_save_layers_uses_the_gif_writer(make_napari_viewer, stack3, tmp_path):
    import imageio.v3 as iio

    viewer = make_napari_viewer()
    source = _add_input(viewer, stack3)
    written = viewer.layers.save(str(tmp_path / "three.gif"), selected=False, plugin="napari-xray")
    assert [Path(p).name for p in written] == ["three.gif"]
    assert iio.imread(written[0], index=None).shape[0] == 3
    assert source.data is not None


# --------------------------------------------------------------------------- napari-xray view


def test_view_subcommand_is_registered():
    from napari_xray import cli

    args = cli.build_parser().parse_args(["view", "frames", "--no-run"])
    assert args.run is cli.view_command and args.input == "frames" and args.no_run


def test_view_opens_the_series_with_the_compare_widget(make_napari_viewer, stack9):
    viewer = make_napari_viewer()
    open_viewer(viewer=viewer)
    (layer,) = viewer.layers
    np.testing.assert_array_equal(layer.data, stack9)
    assert any(isinstance(w, CompareWidget) for w in viewer.window.dock_widgets.values())


def test_view_opens_input_with_the_plugin(make_napari_viewer, xray_paths):
    viewer = make_napari_viewer()
    open_viewer(xray_paths[1], viewer=viewer, compare=True)
    assert viewer.layers[0].data.shape == (1024, 1024)
    assert is_comparing(viewer)


def test_view_falls_back_to_the_phantom(make_napari_viewer, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NAPARI_XRAY_DATA_DIR", str(tmp_path / "no-frames-here"))
    viewer = make_napari_viewer()
    open_viewer(viewer=viewer)
    assert [layer.name for layer in viewer.layers] == ["synthetic phantom"]
    assert "phantom" in capsys.readouterr().err


def test_view_missing_input_fails_before_any_window(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_viewer(tmp_path / "missing.png")


@pytest.mark.slow
def test_view_command_line_end_to_end(xray_dir):
    script = Path(sys.executable).with_name("napari-xray")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "napari_xray.cli"]
    result = subprocess.run(
        [*command, "view", "--no-run"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NAPARI_XRAY_DATA_DIR": str(xray_dir)},
    )
    assert result.returncode == 0, result.stderr
