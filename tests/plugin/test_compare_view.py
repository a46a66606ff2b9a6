"""Compare all, Restore and slider drags in a real napari viewer, widgets opened as napari does.

The Compare all dock comes from the manifest (``add_plugin_dock_widget``, so it
gets napari's proxy of the viewer) and is driven by clicking its Qt button, on
the nine real frames. Under Mesa, napari segfaulted at the first redraw after
several layers were removed at once; Restore hides the comparison's layers
instead, and these tests move the slider afterwards and look at the screen.
Behaviour only: the timings are printed by ``benchmarks/bench_gui.py``.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import napari_xray as nx
from napari_xray.engine.operations import COMPARISON, OPERATIONS
from napari_xray.plugin.console import is_comparing

pytestmark = [pytest.mark.viewer, pytest.mark.realdata]

WAIT_MS = 60_000


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def stack9(xray_stack) -> np.ndarray:
    """All nine real frames (read-only)."""
    return xray_stack


def _open_compare_dock(viewer):
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-xray", "Compare all")
    return widget


def _button(widget):
    from qtpy.QtWidgets import QPushButton

    (button,) = [
        b for b in widget.native.findChildren(QPushButton)
        if b.text() in ("Compare all", "Restore previous view")
    ]
    return button


def _click(qtbot, button):
    from qtpy.QtCore import Qt

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _comparison(viewer):
    from napari_xray.plugin.hub import viewer_hub

    return viewer_hub(viewer).comparison


def _wait_compared(qtbot, viewer):
    qtbot.waitUntil(lambda: _comparison(viewer) is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not _comparison(viewer).busy, timeout=WAIT_MS)


def _canvas(viewer) -> np.ndarray:
    return viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(np.float64)


def _difference(first: np.ndarray, second: np.ndarray) -> float:
    """Mean absolute difference of two screenshots (a progress bar may cost the canvas a row)."""
    rows, cols = min(first.shape[0], second.shape[0]), min(first.shape[1], second.shape[1])
    return float(np.abs(first[:rows, :cols] - second[:rows, :cols]).mean())


def _move_slider(qtbot, viewer, steps=(1, 5, 8, 2, 7, 0, 4)) -> None:
    for step in steps:
        viewer.dims.set_current_step(0, step)
        qtbot.wait(30)  # the canvas redraws (the crash came at this first draw)


def _visible(viewer) -> list:
    return [layer for layer in viewer.layers if layer.visible]


def _restored(viewer, before_layers, source) -> None:
    """Grid off, only what was visible before is visible, the panels kept (hidden)."""
    assert not viewer.canvas.grid.enabled
    assert [layer for layer in viewer.layers if layer in before_layers] == before_layers
    assert _visible(viewer) == [layer for layer in before_layers if layer.visible]
    panels = [layer for layer in viewer.layers if layer not in before_layers]
    assert len(panels) == len(COMPARISON) - 1
    assert not any(panel.visible or panel.name_overlay.visible for panel in panels)
    assert not source.name_overlay.visible


# --------------------------------------------------------------------------- Restore: no crash


def test_restore_from_the_button_then_moving_the_slider_shows_the_original(
    make_napari_viewer, qtbot, stack9
):
    viewer = make_napari_viewer(show=True)
    source = viewer.add_image(stack9, name="chest X-ray series")
    widget = _open_compare_dock(viewer)
    button = _button(widget)
    viewer.dims.set_current_step(0, 4)
    qtbot.wait(50)
    original = _canvas(viewer)

    _click(qtbot, button)
    _wait_compared(qtbot, viewer)
    assert viewer.canvas.grid.enabled and len(_visible(viewer)) == len(COMPARISON)
    grid = _canvas(viewer)
    assert _difference(grid, original) > 10, "the grid should look unlike the original"
    assert button.text() == "Restore previous view"

    _click(qtbot, button)
    assert button.text() == "Compare all"
    _restored(viewer, [source], source)
    _move_slider(qtbot, viewer)
    viewer.dims.set_current_step(0, 4)
    qtbot.wait(50)
    assert _difference(_canvas(viewer), original) < 2.0, "the original frame is on screen again"

    # and once more: the second comparison reuses the hidden layers
    layers_before = list(viewer.layers)
    _click(qtbot, button)
    _wait_compared(qtbot, viewer)
    assert list(viewer.layers) == layers_before
    assert _difference(_canvas(viewer), grid) < 2.0, "the same grid as the first time"
    _click(qtbot, button)
    _move_slider(qtbot, viewer)
    viewer.dims.set_current_step(0, 4)
    qtbot.wait(50)
    assert _difference(_canvas(viewer), original) < 2.0


def test_console_compare_all_and_restore_view_then_moving_the_slider(
    make_napari_viewer, qtbot, stack9
):
    viewer = make_napari_viewer(show=True)
    source = viewer.add_image(stack9, name="chest X-ray series")
    marks = viewer.add_points([[3, 500.0, 500.0]], name="marks", size=40)
    viewer.dims.set_current_step(0, 3)
    qtbot.wait(50)
    original = _canvas(viewer)  # frame 3 with its mark

    panels = nx.compare_all(viewer, source)
    assert panels[0] is source and len(panels) == len(COMPARISON)
    assert not marks.visible
    qtbot.wait(50)
    assert nx.restore_view(viewer)
    _restored(viewer, [source, marks], source)
    _move_slider(qtbot, viewer)
    viewer.dims.set_current_step(0, 3)
    qtbot.wait(50)
    assert _difference(_canvas(viewer), original) < 2.0
    assert not nx.restore_view(viewer)  # nothing to undo


def test_compare_all_of_another_layer_reuses_the_panel_layers(make_napari_viewer, qtbot, stack9):
    viewer = make_napari_viewer(show=True)
    first = viewer.add_image(stack9, name="series")
    second = viewer.add_image(np.ascontiguousarray(stack9[::-1, :512, :512]), name="crop")
    panels = nx.compare_all(viewer, first)
    nx.restore_view(viewer)
    again = nx.compare_all(viewer, second)
    assert again[0] is second
    assert all(a is b for a, b in zip(panels[1:], again[1:], strict=True))
    assert len(viewer.layers) == 2 + len(COMPARISON) - 1
    for panel, layer in zip(COMPARISON[1:], again[1:], strict=True):
        expected = OPERATIONS[panel.key](second.data, **panel.params)
        np.testing.assert_array_equal(layer.data, expected.astype(layer.data.dtype))
        assert layer.metadata["napari_xray"]["input_layer"] == "crop"
    # comparing the other layer while on switches over without restoring by hand
    switched = nx.compare_all(viewer, first)
    assert switched[0] is first and not second.visible
    assert nx.restore_view(viewer)
    _move_slider(qtbot, viewer, steps=(3, 6))
    assert [layer.name for layer in _visible(viewer)] == ["series", "crop"]


def test_deleted_hidden_panels_are_made_again(make_napari_viewer, qtbot, stack9):
    from napari_xray.plugin.canvas import remove_layers

    viewer = make_napari_viewer(show=True)
    source = viewer.add_image(stack9[:3].copy(), name="three")
    first = nx.compare_all(viewer, source)
    nx.restore_view(viewer)
    remove_layers(viewer, first[1:])  # the user frees their memory
    assert list(viewer.layers) == [source]
    assert all(result.buffer is None for result in _comparison(viewer).outputs._results)
    again = nx.compare_all(viewer, source)
    assert len(viewer.layers) == len(COMPARISON) and not any(a is b for a, b in zip(
        first[1:], again[1:], strict=True))
    for panel, layer in zip(COMPARISON[1:], again[1:], strict=True):
        expected = OPERATIONS[panel.key](source.data, **panel.params)
        np.testing.assert_array_equal(layer.data, expected.astype(layer.data.dtype))
    _move_slider(qtbot, viewer, steps=(1, 2, 0))


def test_removing_the_input_while_comparing_puts_the_view_back(make_napari_viewer, qtbot, stack9):
    viewer = make_napari_viewer(show=True)
    keep = viewer.add_image(stack9[:, :256, :256].copy(), name="keep")
    source = viewer.add_image(stack9[:3].copy(), name="three")
    nx.compare_all(viewer, source)
    from napari_xray.plugin.canvas import remove_layers

    remove_layers(viewer, [source])
    qtbot.waitUntil(lambda: not is_comparing(viewer), timeout=WAIT_MS)
    assert not viewer.canvas.grid.enabled and keep.visible
    _move_slider(qtbot, viewer, steps=(1, 2))


# --------------------------------------------------------------------------- panels arrive


def test_panels_arrive_one_by_one_with_repaints_between_and_progress(
    make_napari_viewer, qtbot, stack9
):
    from napari.utils import progress
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    from napari_xray.plugin.canvas import draw_emitter

    viewer = make_napari_viewer(show=True)
    viewer.add_image(stack9, name="chest X-ray series")
    widget = _open_compare_dock(viewer)
    draws = []
    draw_emitter(viewer).connect(lambda event=None: draws.append(1))
    bars = []
    progress._all_instances.events.changed.connect(
        lambda event: bars.extend(bar.desc for bar in event.added)
    )
    arrivals = []

    _click(qtbot, _button(widget))
    state = _comparison(viewer)
    assert state.arriving
    assert QApplication.overrideCursor().shape() == Qt.CursorShape.BusyCursor
    assert not gc.isenabled(), "no full collection may land inside a panel's step"
    state.panel_shown.connect(lambda index, layer: arrivals.append((index, len(draws))))
    _wait_compared(qtbot, viewer)

    assert [index for index, _ in arrivals] == list(range(1, len(COMPARISON)))
    counts = [count for _, count in arrivals]
    assert all(b > a for a, b in zip(counts, counts[1:], strict=False)), (
        f"the canvas should draw between panels; draws at each arrival: {counts}"
    )
    assert "napari-xray: compare all" in bars
    assert QApplication.overrideCursor() is None
    assert gc.isenabled()
    assert "Comparing 9 panels" in widget.status
    titles = [layer.name for layer in _visible(viewer)[1:]]
    assert titles == [panel.title for panel in COMPARISON[1:]]


def test_restore_while_panels_arrive_stops_them(make_napari_viewer, qtbot, stack9):
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer(show=True)
    source = viewer.add_image(stack9, name="chest X-ray series")
    widget = _open_compare_dock(viewer)
    _click(qtbot, _button(widget))
    _click(qtbot, _button(widget))  # at once: Restore
    assert not _comparison(viewer).arriving
    assert QApplication.overrideCursor() is None
    assert gc.isenabled()
    qtbot.wait(300)
    assert _visible(viewer) == [source] and not viewer.canvas.grid.enabled
    _move_slider(qtbot, viewer, steps=(2, 3))


def test_closing_the_viewer_while_panels_arrive(make_napari_viewer, qtbot, stack9):
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer(show=True)
    viewer.add_image(stack9, name="chest X-ray series")
    widget = _open_compare_dock(viewer)
    _click(qtbot, _button(widget))
    qtbot.wait(400)  # a few panels in
    assert _comparison(viewer).arriving
    viewer.close()
    qtbot.wait(500)  # nothing raises in the event loop, no step runs on
    assert not _comparison(viewer).arriving
    assert QApplication.overrideCursor() is None
    assert gc.isenabled()


# --------------------------------------------------------------------------- the removal helper


def test_removing_eight_big_layers_at_once_keeps_the_canvas_alive(make_napari_viewer, qtbot):
    """What crashed plain napari (8 × (9, 1024, 1024) removed at once, then a slider move)."""
    from napari_xray.plugin.canvas import remove_layers

    viewer = make_napari_viewer(show=True)
    base = viewer.add_image(np.zeros((9, 1024, 1024), np.uint8), name="base")
    rng = np.random.default_rng(0)
    extra = [
        viewer.add_image(rng.random((9, 1024, 1024), dtype=np.float32), name=f"extra {i}")
        for i in range(8)
    ]
    qtbot.wait(50)
    remove_layers(viewer, extra)
    assert list(viewer.layers) == [base]
    _move_slider(qtbot, viewer, steps=(1, 4, 8))
    assert _canvas(viewer).max() == 0  # the black base frame, drawn


# --------------------------------------------------------------------------- slider drags


def _qslider(control):
    from qtpy.QtWidgets import QSlider

    native = control.slider.native
    return native if isinstance(native, QSlider) else native.findChild(QSlider)


class _Drag:
    """Drag a slider's handle with the mouse, one pixel per move, ``moves`` times.

    It goes right and, at the end of the groove, back (a dock under Xvfb is narrow).
    Like a hand on the mouse, the next move is already waiting when a frame is drawn:
    each is queued as soon as the canvas has drawn the one before.
    """

    def __init__(self, viewer, slider, moves: int) -> None:
        from qtpy.QtWidgets import QStyle, QStyleOptionSlider

        from napari_xray.plugin.canvas import draw_emitter

        option = QStyleOptionSlider()
        slider.initStyleOption(option)
        handle = slider.style().subControlRect(
            QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, slider
        )
        self.slider, self.point, self.left = slider, handle.center(), moves
        half = handle.width() // 2 + 2
        self.span = (half, slider.width() - half)
        self.direction = 1
        self.values: list[int] = []
        self.waiting = self.done = False
        self.draws = draw_emitter(viewer)
        self.draws.connect(self._on_draw, position="last")

    def start(self) -> None:
        from qtpy.QtCore import Qt
        from qtpy.QtTest import QTest

        QTest.mousePress(
            self.slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, self.point
        )
        assert self.slider.isSliderDown()
        self._step()

    def _on_draw(self, event=None) -> None:
        if self.waiting:
            from qtpy.QtCore import QTimer

            self.waiting = False
            QTimer.singleShot(0, self._step)

    def _step(self) -> None:
        from qtpy.QtCore import QPoint, Qt
        from qtpy.QtTest import QTest

        if not self.left:
            QTest.mouseRelease(
                self.slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                self.point,
            )
            self.draws.disconnect(self._on_draw)
            self.done = True
            return
        from qtpy.QtCore import QTimer

        self.left -= 1
        self.waiting = True
        left = self.left
        # a move that changed nothing draws nothing: the next one comes anyway
        QTimer.singleShot(500, lambda: self.waiting and self.left == left and self._step())
        if not self.span[0] <= self.point.x() + self.direction <= self.span[1]:
            self.direction = -self.direction
        self.point = self.point + QPoint(self.direction, 0)
        QTest.mouseMove(self.slider, self.point)
        self.values.append(self.slider.value())


def test_a_sigma_drag_renames_once_and_ends_with_the_last_value(
    make_napari_viewer, qtbot, stack9
):
    viewer = make_napari_viewer(show=True)
    source = viewer.add_image(stack9, name="chest X-ray series")
    _dock, widget = viewer.window.add_plugin_dock_widget(
        "napari-xray", "Gaussian gradient magnitude"
    )
    widget.input_layer = source
    output = widget.run(wait=True)
    qtbot.wait(200)  # the dock's layout settles (the status line changed)
    renames = []
    output.events.name.connect(lambda event: renames.append(output.name))
    drag = _Drag(viewer, _qslider(widget.controls["sigma"]), moves=60)
    drag.start()
    qtbot.waitUntil(lambda: drag.done, timeout=WAIT_MS)
    assert len(drag.values) == 60
    assert all(a != b for a, b in zip(drag.values, drag.values[1:], strict=False)), (
        f"every move moved the slider: {drag.values}"
    )
    assert renames == [], "no rename while the slider is dragged"
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)

    sigma = widget.controls["sigma"].value
    assert len(renames) == 1 and f"σ={sigma:g}" in renames[0]
    assert widget.output_layer is output
    assert output.metadata["napari_xray"]["parameters"]["sigma"] == pytest.approx(sigma)
    assert output.metadata["napari_xray"]["complete"]
    np.testing.assert_array_equal(output.data, OPERATIONS["gradient"](stack9, sigma=sigma))
