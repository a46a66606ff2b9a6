"""The "What the tutorial gets wrong" dock, opened from napari's menu: the four pairs of
the frame on screen come in as layers in grid view and leave as Compare all's do;
Canny's stages as layers; the transfer function plotted. The pairs' own claims are
checked in tests/engine/test_explain.py."""

from __future__ import annotations

import numpy as np
import pytest

import napari_xray as nx
from napari_xray.engine.explain import PAIRS, explain_pairs, gaussian_transfer

pytestmark = pytest.mark.viewer

WAIT_MS = 60_000


def _open_from_the_menu(viewer):
    from napari_xray.plugin.widgets import ExplainWidget

    def submenu(menu, text):
        for action in menu.actions():
            if action.menu() is not None and action.text().replace("&", "") == text:
                action.menu().aboutToShow.emit()
                return action.menu()
        raise AssertionError(f"no submenu {text!r}")

    xray = submenu(submenu(viewer.window.layers_menu, "Filter"), "X-ray")
    (action,) = [a for a in xray.actions()
                 if a.text().startswith("What the tutorial gets wrong")]  # fmt: skip
    action.trigger()
    (dock,) = [w for w in viewer.window.dock_widgets.values() if isinstance(w, ExplainWidget)]
    return dock


def _show(qtbot, dock, key):
    dock.choose_pair(key)
    dock._show.click()
    qtbot.waitUntil(lambda: dock.showing and not dock.busy, timeout=WAIT_MS)


@pytest.mark.realdata
def test_the_pairs_come_in_grid_view_and_leave_as_compare_alls(make_napari_viewer, qtbot):
    from napari.layers import Labels

    from napari_xray.plugin.canvas import grid_model

    viewer = make_napari_viewer()
    dock = _open_from_the_menu(viewer)
    (series,) = viewer.open_sample("napari-xray", "series")
    log = nx.add_filter(viewer, series, "log")
    assert dock.image_layer is series  # results are not offered as the image explained
    viewer.dims.set_current_step(0, 1)
    grid = grid_model(viewer)
    assert not grid.enabled

    _show(qtbot, dock, None)
    expected = explain_pairs(series.data, 1)
    layers = list(viewer.layers)[:12]
    assert [layer.name[0] for layer in layers] == [str(n) for n in range(1, 5) for _ in "abc"]
    for index, pair in enumerate(expected):
        for part, data in enumerate((pair.tutorial, pair.engine, pair.difference)):
            np.testing.assert_array_equal(layers[3 * index + part].data, data)
            assert layers[3 * index + part].visible
        assert pair.caption[0] in dock._captions.text()
    assert grid.enabled and tuple(grid.shape) == (4, 3)
    assert not series.visible and not log.visible
    assert "frame 1" in dock.status and dock._show.text() == "Restore"

    dock._show.click()  # Restore
    assert not grid.enabled and series.visible and log.visible
    assert not any(layer.visible for layer in dock.pair_layers.values())

    # Another frame and one pair: the same layers, filled again.
    viewer.dims.set_current_step(0, 5)
    before = dock.pair_layers[("canny", "engine")]
    _show(qtbot, dock, "canny")
    assert dock.pair_layers[("canny", "engine")] is before
    pair = explain_pairs(series.data, 5)[3]
    np.testing.assert_array_equal(before.data, pair.engine)
    assert tuple(grid.shape) == (1, 3)
    assert [layer.visible for key, layer in dock.pair_layers.items()] == [
        key[0] == "canny" for key in dock.pair_layers]
    dock.restore()
    assert series.visible and not grid.enabled

    # Canny's stages, at the dock's σ; the transfer function of that σ.
    dock._sigma.setValue(1.5)
    stages = dock.add_canny_stages()
    assert len(stages) == 6 and [isinstance(layer, Labels) for layer in stages] == [
        False, False, False, True, True, True]
    np.testing.assert_array_equal(stages[-1].data,
                                  nx.canny(series.data[5], sigma=1.5).astype(np.uint8))
    curve = dock._figure.axes[0].lines[0]
    np.testing.assert_allclose(curve.get_ydata(), gaussian_transfer(1.5, curve.get_xdata()))
    assert dock.add_canny_stages()[0] is stages[0]  # refilled, not added again


def test_the_phantom_and_a_single_frame(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _dock, dock = viewer.window.add_plugin_dock_widget("napari-xray",
                                                       "What the tutorial gets wrong")
    (phantom,) = viewer.open_sample("napari-xray", "phantom")
    viewer.dims.set_current_step(0, 2)
    _show(qtbot, dock, "stack")
    pair = explain_pairs(phantom.data, 2)[2]
    shown = [dock.pair_layers[("stack", part)] for part in ("tutorial", "engine", "difference")]
    for layer, data in zip(shown, (pair.tutorial, pair.engine, pair.difference), strict=True):
        np.testing.assert_array_equal(layer.data, data)
    dock.restore()

    frame = viewer.add_image(np.asarray(phantom.data[0]), name="one frame")
    dock.image_layer = frame
    dock.choose_pair("stack")
    dock._show.click()
    qtbot.waitUntil(lambda: not dock.busy, timeout=WAIT_MS)
    assert not dock.showing and "needs a stack" in dock.status
    assert list(PAIRS)[2] == "stack"


def test_closing_the_dock_puts_the_view_back_and_stages_step_aside(make_napari_viewer, qtbot):
    from napari_xray.plugin.canvas import grid_model

    viewer = make_napari_viewer()
    dock_widget, dock = viewer.window.add_plugin_dock_widget("napari-xray",
                                                             "What the tutorial gets wrong")
    stack = np.random.default_rng(1).integers(0, 255, (3, 64, 80), np.uint8)
    image = viewer.add_image(stack, name="chest", scale=(1, 0.5, 0.5))
    viewer.dims.set_current_step(0, 1)
    stages = dock.add_canny_stages()
    assert all(layer.visible for layer in stages)
    np.testing.assert_allclose(stages[0].scale, (0.5, 0.5))

    _show(qtbot, dock, "wraparound")
    shown = {layer.name for layer in viewer.layers if layer.visible}
    assert len(shown) == 3 and all(name.startswith("1 ") for name in shown)
    dock.restore()
    assert image.visible and all(layer.visible for layer in stages)

    image.scale = (1, 0.25, 0.25)  # a refilled layer follows its input's placement
    assert dock.add_canny_stages()[0] is stages[0]
    np.testing.assert_allclose(stages[0].scale, (0.25, 0.25))

    _show(qtbot, dock, "wraparound")
    assert grid_model(viewer).enabled and not image.visible
    viewer.window.remove_dock_widget(dock_widget)  # what the dock's close button does
    assert not grid_model(viewer).enabled and image.visible
    assert not any(layer.visible for layer in dock.pair_layers.values())
