"""The napari-xray widgets in real napari viewers (Qt + OpenGL under Xvfb) on the real frames.

Every widget is opened the way napari's menu opens it,
``viewer.window.add_plugin_dock_widget("napari-xray", "<display name>")`` (so it is
handed napari's ``PublicOnlyProxy`` of the viewer), and driven through its Qt
controls: buttons clicked, spin boxes and sliders set, boxes ticked. Results are
compared with the engine's on the whole stack. Most tests use three frames; the
ones about workers, the comparison and the statistics use all nine.
"""

from __future__ import annotations

import hashlib
import importlib
import time
from pathlib import Path

import numpy as np
import pytest

import napari_xray
from napari_xray.engine.operations import COMPARISON, OPERATIONS
from napari_xray.engine.statistics import image_statistics, intensity_histogram
from napari_xray.plugin.console import add_filter, compare_all, is_comparing, restore_view
from napari_xray.plugin.hub import viewer_hub
from napari_xray.plugin.widgets import StatisticsWidget
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


#: The display name of each dock in napari's menus (napari.yaml), by operation key.
DISPLAY_NAMES = {key: operation.title for key, operation in OPERATIONS.items()}


def _open(viewer, name: str):
    """Open a napari-xray dock as napari's menu does; ``name`` is a key or a display name."""
    _dock_widget, widget = viewer.window.add_plugin_dock_widget(
        "napari-xray", DISPLAY_NAMES.get(name, name)
    )
    return widget


def _click(button) -> None:
    """Click a magicgui push button as a person does."""
    from pytestqt.qtbot import QtBot
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QAbstractButton

    native = button.native
    target = native if isinstance(native, QAbstractButton) else native.findChild(QAbstractButton)
    QtBot.mouseClick(target, Qt.MouseButton.LeftButton, pos=target.rect().center())


def _tick(checkbox, checked: bool) -> None:
    """Tick or untick a magicgui checkbox with a click (if it is not already so)."""
    if bool(checkbox.native.isChecked()) != checked:
        checkbox.native.click()


def _type_into(spin, value) -> None:
    """Type ``value`` into a Qt spin box and press Enter, as a person does."""
    from pytestqt.qtbot import QtBot
    from qtpy.QtCore import Qt

    spin.selectAll()
    QtBot.keyClicks(spin, f"{value:g}" if isinstance(value, float) else str(value))
    QtBot.keyClick(spin, Qt.Key.Key_Return)


def _set_control(widget, name: str, value) -> None:
    """Set parameter ``name`` of an operation dock through its Qt control."""
    from qtpy.QtWidgets import QAbstractSpinBox, QComboBox

    control = widget.controls[name]
    if control.parameter.kind is bool:
        _tick(control.widget, bool(value))
        return
    if control.parameter.kind is str:
        combo = control.widget.native
        combo = combo if isinstance(combo, QComboBox) else combo.findChild(QComboBox)
        combo.setCurrentText(str(value))
        return
    if control.parameter.optional:
        _tick(control._auto, value is None)
        if value is None:
            return
    spins = control.widget.native.findChildren(QAbstractSpinBox)
    spin = next(s for s in spins if s.isEnabled() and not s.isHidden())
    _type_into(spin, float(value) if control.parameter.kind is float else int(value))


def _choose_layer(widget, layer) -> None:
    """Pick ``layer`` in a dock's layer drop-down."""
    from qtpy.QtWidgets import QComboBox

    combo = widget._image.native
    combo = combo if isinstance(combo, QComboBox) else combo.findChild(QComboBox)
    combo.setCurrentText(layer.name)


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
    keys = {c.removeprefix(prefix) for c in widget_commands} - {
        "compare", "statistics", "frames", "window_level", "line_profile", "roi_statistics",
        "explain"}
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
    widget = _open(viewer, key)
    assert isinstance(widget, WIDGET_CLASSES[key])
    assert widget.input_layer is source

    _click(widget._run_button)
    assert len(viewer.layers) == 2
    _wait_idle(qtbot, widget)
    output = widget.output_layer

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
    assert output.name == f"{operation.layer_name({})} · chest"  # the operation first
    if isinstance(output, napari.layers.Image):
        assert output.colormap.name == operation.colormaps[0]
        low, high = float(expected.min()), float(expected.max())
        assert output.contrast_limits_range == pytest.approx([low, high])
        limits = operation.contrast_limits(expected, low, high)[0]  # percentiles for floats
        assert output.contrast_limits == pytest.approx(list(limits))
        assert low <= limits[0] < limits[1] <= high
    assert _digest(stack3) == before
    assert "Done" in widget.status


def test_widget_built_directly_adds_the_engine_result(make_napari_viewer, stack3):
    # Beside the menu path above: the class constructed by hand, run from Python.
    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    widget = make_widget(viewer, "sobel")
    viewer.window.add_dock_widget(widget, name="Sobel (by hand)")
    output = widget.run(wait=True)
    np.testing.assert_array_equal(output.data, OPERATIONS["sobel"](stack3))


def test_rerun_reuses_its_layer_and_new_layer_keeps_the_old_one(make_napari_viewer, qtbot, stack3):
    operation = OPERATIONS["log"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    widget = _open(viewer, "log")
    _click(widget._run_button)
    _wait_idle(qtbot, widget)
    first = widget.output_layer

    _set_control(widget, "sigma", 2.0)  # auto-apply: a live preview into the same layer
    qtbot.waitUntil(lambda: first.metadata["napari_xray"]["parameters"]["sigma"] == 2.0)
    _wait_idle(qtbot, widget)
    assert widget.output_layer is first and len(viewer.layers) == 2
    np.testing.assert_array_equal(first.data, operation(stack3, sigma=2.0))
    assert first.name == "LoG σ=2 · chest"

    _tick(widget._new_layer, True)
    _click(widget._run_button)
    _wait_idle(qtbot, widget)
    second = widget.output_layer
    assert second is not first and len(viewer.layers) == 3
    _tick(widget._new_layer, False)
    _set_control(widget, "sigma", 3.0)  # updates the newest output only
    qtbot.waitUntil(lambda: second.metadata["napari_xray"]["parameters"]["sigma"] == 3.0)
    _wait_idle(qtbot, widget)
    np.testing.assert_array_equal(second.data, operation(stack3, sigma=3.0))
    np.testing.assert_array_equal(first.data, operation(stack3, sigma=2.0))
    assert len(viewer.layers) == 3


def test_colormap_choice_recolours_without_recomputing(make_napari_viewer, qtbot, stack3):
    from qtpy.QtWidgets import QComboBox

    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    widget = _open(viewer, "sobel")
    _click(widget._run_button)
    _wait_idle(qtbot, widget)
    output = widget.output_layer
    data = output.data
    assert output.colormap.name == "gray"
    combo = widget._colormap.native
    combo = combo if isinstance(combo, QComboBox) else combo.findChild(QComboBox)
    combo.setCurrentText("hot")
    assert output.colormap.name == "hot" and output.data is data
    combo.setCurrentText("CMRmap")
    assert output.colormap.name == "CMRmap"


def test_mask_slider_spans_the_layer_and_binary_mode_shows_labels(
    make_napari_viewer, qtbot, stack3
):
    from napari.layers import Image, Labels

    operation = OPERATIONS["mask"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    widget = _open(viewer, "mask")
    slider = widget.controls["threshold"].widget
    assert (slider.min, slider.max) == (float(stack3.min()), float(stack3.max()))

    _click(widget._run_button)
    _wait_idle(qtbot, widget)
    first = widget.output_layer
    assert isinstance(first, Image) and first.data.dtype == np.uint8
    position = viewer.layers.index(first)
    _set_control(widget, "mode", "binary")
    _set_control(widget, "threshold", 120)
    qtbot.waitUntil(lambda: isinstance(widget.output_layer, Labels), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: widget.parameters()["threshold"] == 120, timeout=WAIT_MS)
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
    widget = _open(viewer, "log")
    _click(widget._run_button)
    spin = widget.controls["sigma"]._number.native
    for step in range(50):
        spin.setValue(0.5 + 0.1 * step)  # as the spin box's arrows and typing set it
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
    widget = _open(viewer, "gradient")
    widget.auto_apply = False

    _click(widget._run_button)
    output = widget.output_layer
    np.testing.assert_array_equal(output.data[4], operation(stack9[4]))  # frame 5 is shown
    qtbot.waitUntil(lambda: widget.outputs._worker is not None, timeout=WAIT_MS)
    assert widget.busy  # the other frames are still being computed

    outputs = widget.outputs
    stale_generation = outputs.generation
    _set_control(widget, "sigma", 3.0)
    _click(widget._run_button)
    # a late frame of the previous parameters arrives after the newer change
    outputs._on_frame(stale_generation, (6, [np.full(stack9.shape[1:], 1e6, np.float32)]))
    _wait_idle(qtbot, widget)
    np.testing.assert_array_equal(output.data, operation(stack9, sigma=3.0))


def test_moving_the_slider_computes_that_frame_at_once(
    make_napari_viewer, qtbot, stack9, slow_worker
):
    operation = OPERATIONS["sobel"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack9)
    viewer.dims.set_current_step(0, 0)
    widget = _open(viewer, "sobel")
    _click(widget._run_button)
    output = widget.output_layer
    qtbot.waitUntil(lambda: widget.outputs._worker is not None, timeout=WAIT_MS)
    assert widget.busy
    viewer.dims.set_current_step(0, 7)  # the worker, at 0.15 s per frame, is far from frame 8
    np.testing.assert_array_equal(output.data[7], operation(stack9[7]))


@pytest.mark.parametrize(
    ("case", "phrase"),
    [
        ("none", "No image layer"),
        ("labels", "'segmentation' is a Labels layer"),
        ("points", "'marks' is a Points layer"),
        ("shapes", "'outline' is a Shapes layer"),
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
    widget = _open(viewer, "sobel")
    _click(widget._run_button)
    assert phrase in widget.status and "Proxy" not in widget.status
    assert len(viewer.layers) == count

    compare = _open(viewer, "Compare all")
    _click(compare._toggle_button)
    assert phrase in compare.status and "Proxy" not in compare.status
    assert len(viewer.layers) == count and not is_comparing(viewer)
    if case != "none":
        with pytest.raises(ValueError, match=phrase):
            add_filter(viewer, viewer.layers[-1], "sobel")


def test_rejected_parameters_say_what_to_change(make_napari_viewer, stack3):
    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    widget = _open(viewer, "canny")
    _tick(widget._auto, False)
    _set_control(widget, "low_threshold", 80.0)
    _set_control(widget, "high_threshold", 20.0)
    _click(widget._run_button)
    assert widget.status == (
        "The low threshold (80) is above the high threshold (20); lower it or raise the "
        "high threshold."
    )
    assert len(viewer.layers) == 1
    _set_control(widget, "high_threshold", None)  # auto: 20 % of 255 = 51, still below 80
    _click(widget._run_button)
    assert "high threshold (51)" in widget.status and len(viewer.layers) == 1


def test_input_deleted_while_the_worker_runs(make_napari_viewer, qtbot, stack9, slow_worker):
    viewer = make_napari_viewer()
    source = _add_input(viewer, stack9)
    widget = _open(viewer, "sobel")
    _click(widget._run_button)
    qtbot.waitUntil(lambda: widget.outputs._worker is not None, timeout=WAIT_MS)
    assert widget.busy and len(viewer.layers) == 2
    viewer.layers.remove(source)
    _workers_done(qtbot)
    qtbot.wait(50)
    assert len(viewer.layers) == 0, "no half-computed orphan layer may stay or appear"
    assert "removed" in widget.status
    _click(widget._run_button)
    assert "No image layer" in widget.status


def test_output_deleted_while_the_worker_runs(make_napari_viewer, qtbot, stack9, slow_worker):
    operation = OPERATIONS["log"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack9)
    widget = _open(viewer, "log")
    _click(widget._run_button)
    output = widget.output_layer
    qtbot.waitUntil(lambda: widget.outputs._worker is not None, timeout=WAIT_MS)
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
    widget = _open(viewer, "prewitt")
    _click(widget._run_button)
    compare_all(viewer, wait=False)
    qtbot.waitUntil(lambda: widget.busy, timeout=WAIT_MS)
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
    widget = _open(viewer, "Compare all")
    _choose_layer(widget, source)
    assert widget.input_layer is source

    _click(widget._toggle_button)
    assert is_comparing(viewer)
    _wait_idle(qtbot, viewer_hub(viewer).comparison)  # panels arrive one by one

    def visible():
        return [layer for layer in viewer.layers if layer.visible]

    assert grid.enabled and grid.stride == 1
    panels = visible()
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

    _click(widget._toggle_button)
    qtbot.waitUntil(lambda: not is_comparing(viewer), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: marks.visible, timeout=WAIT_MS)
    assert [layer for layer in viewer.layers if layer.visible] == [source, marks]
    assert not source.name_overlay.visible
    assert (grid.enabled, grid.stride, tuple(grid.shape)) == before
    assert (tuple(viewer.scene.camera.center), viewer.scene.camera.zoom) == camera
    assert widget._toggle_button.text == "Compare all"


def test_compare_grid_png_is_written_and_shows_distinct_panels(
    make_napari_viewer, qtbot, stack9, tmp_path, monkeypatch
):
    import imageio.v3 as iio
    from qtpy.QtWidgets import QFileDialog

    viewer = make_napari_viewer(show=True)
    source = _add_input(viewer, stack9)
    widget = _open(viewer, "Compare all")
    compare_all(viewer, source)
    path = tmp_path / "grid.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), "*.png"))
    _click(widget._png_button)
    assert "grid.png" in widget.status
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
    stats = _open(viewer, "Statistics")  # napari hands it a PublicOnlyProxy of the viewer
    viewer.layers.selection.active = source
    viewer.dims.set_current_step(0, 1)  # the tutorial's frame 00000011_001
    expected = image_statistics(stack9[1])
    qtbot.waitUntil(lambda: stats.frame_statistics == expected, timeout=WAIT_MS)
    assert expected["mean"] == 172.52233219146729 and expected["median"] == 195.0
    qtbot.waitUntil(lambda: stats.stack_statistics == image_statistics(stack9), timeout=WAIT_MS)
    assert stats._table.item(3, 0).text() == "172.522"  # mean of the frame
    assert stats._title.text().startswith("<b>chest</b>")
    counts, edges = intensity_histogram(stack9[1])
    values, drawn_edges = stats._axes.patches[0].get_data()[:2]
    np.testing.assert_array_equal(values, counts)
    np.testing.assert_allclose(drawn_edges, edges)

    viewer.dims.set_current_step(0, 5)
    qtbot.waitUntil(lambda: stats.frame_statistics == image_statistics(stack9[5]), timeout=WAIT_MS)

    assert stats.threshold == OPERATIONS["mask"].defaults()["threshold"]
    mask = _open(viewer, "mask")
    _tick(mask._auto, False)
    _set_control(mask, "threshold", 99)
    assert stats.threshold == 99.0
    assert stats._axes.lines[-1].get_xdata()[0] == 99.0

    points = viewer.add_points([[1, 2, 3]], name="my points")
    viewer.layers.selection.active = points
    assert stats.frame_statistics is None
    assert stats._title.text() == "'my points' is a Points layer; select an image or labels layer."


def test_statistics_built_directly_show_the_selected_layer(make_napari_viewer, qtbot, stack3):
    viewer = make_napari_viewer()
    source = _add_input(viewer, stack3)
    stats = StatisticsWidget(viewer)
    viewer.window.add_dock_widget(stats, name="Statistics (by hand)")
    viewer.layers.selection.active = source
    qtbot.waitUntil(lambda: stats.stack_statistics == image_statistics(stack3), timeout=WAIT_MS)


def test_statistics_follow_a_live_output(make_napari_viewer, qtbot, stack3):
    operation = OPERATIONS["log"]
    viewer = make_napari_viewer()
    _add_input(viewer, stack3)
    stats = _open(viewer, "Statistics")
    widget = _open(viewer, "log")
    _click(widget._run_button)
    _wait_idle(qtbot, widget)
    output = widget.output_layer
    viewer.layers.selection.active = output
    expected = image_statistics(operation(stack3))
    qtbot.waitUntil(lambda: stats.stack_statistics == expected, timeout=WAIT_MS)
    _set_control(widget, "sigma", 2.0)  # a live preview rewrites the layer's data in place
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
    assert [layer for layer in viewer.layers if layer.visible] == [source, sobel, extra]


def test_console_forgets_calls_whose_layers_are_gone(make_napari_viewer, stack3):
    from napari_xray.plugin.hub import viewer_hub

    viewer = make_napari_viewer()
    source = _add_input(viewer, stack3)
    log = napari_xray.add_filter(viewer, source, "log")
    viewer.layers.remove(log)
    napari_xray.add_filter(viewer, source, "sobel")
    assert [key for _, key in viewer_hub(viewer).console] == ["sobel"]


def test_gif_button_saves_what_the_canvas_shows(
    make_napari_viewer, stack9, tmp_path, monkeypatch
):
    import imageio.v3 as iio
    from qtpy.QtWidgets import QFileDialog

    viewer = make_napari_viewer()
    source = _add_input(viewer, stack9)
    source.contrast_limits = (40.0, 220.0)
    widget = _open(viewer, "Compare all")
    spin = widget._duration.native
    _type_into(spin, 0.25)
    viewer.layers.selection.active = source
    path = tmp_path / "series.gif"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), "*.gif"))
    _click(widget._gif_button)
    assert "Saved 'chest'" in widget.status
    frames = iio.imread(path, index=None)
    assert frames.shape[0] == 9
    gray = frames if frames.ndim == 3 else frames[..., 0]
    shown = np.clip((stack9.astype(np.float64) - 40.0) / 180.0, 0, 1)
    np.testing.assert_array_equal(gray, np.rint(shown * 255).astype(np.uint8))
    assert iio.immeta(path, index=0)["duration"] == 250


def test_napari_save_layers_uses_the_gif_writer(make_napari_viewer, stack3, tmp_path):
    import imageio.v3 as iio

    viewer = make_napari_viewer()
    source = _add_input(viewer, stack3)
    written = viewer.layers.save(str(tmp_path / "three.gif"), selected=False, plugin="napari-xray")
    assert [Path(p).name for p in written] == ["three.gif"]
    assert iio.imread(written[0], index=None).shape[0] == 3
    assert source.data is not None
