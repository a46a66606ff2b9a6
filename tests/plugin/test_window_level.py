"""The Window/level dock opened from napari's menu, on generated DICOM radiographs:
the header's windows as presets, WL/WW in the DICOM convention, typed values, and a
real right-button drag on the canvas."""

from __future__ import annotations

import numpy as np
import pytest

from napari_xray.io.dicom_display import window_limits
from radiographs import write_radiograph

pytestmark = pytest.mark.viewer

WINDOWS = [(2048, 4096, "FULL"), (2500.5, 801, "LUNG"), (3300, 300, "BONE")]


def _open_dock(viewer):
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-xray", "Window/level")
    return widget


def _send(widget, kind, position, button, buttons):
    from qtpy.QtCore import QPointF, Qt
    from qtpy.QtGui import QMouseEvent
    from qtpy.QtWidgets import QApplication

    local = QPointF(*position)
    event = QMouseEvent(kind, local, widget.mapToGlobal(local), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def _right_drag(qtbot, canvas, start, moves):
    from qtpy.QtCore import QEvent, Qt

    right, none = Qt.MouseButton.RightButton, Qt.MouseButton.NoButton
    _send(canvas, QEvent.Type.MouseButtonPress, start, right, right)
    position = start
    for position in moves:
        _send(canvas, QEvent.Type.MouseMove, position, none, right)
        qtbot.wait(5)
    _send(canvas, QEvent.Type.MouseButtonRelease, position, right, none)


def test_presets_readout_typing_and_a_right_button_drag(make_napari_viewer, qtbot, tmp_path):
    path = write_radiograph(tmp_path / "chest.dcm", windows=WINDOWS,
                            spacing={"ImagerPixelSpacing": (0.15, 0.16)})
    viewer = make_napari_viewer()
    dock = _open_dock(viewer)
    assert "Select a grayscale image layer" in dock._title.text()
    (layer,) = viewer.open(str(path), plugin="napari-xray")
    viewer.layers.selection.active = layer

    # The header's default window is on screen, read back as the header states it.
    assert tuple(layer.contrast_limits) == window_limits(2048, 4096)
    assert dock.presets() == ["FULL", "LUNG", "BONE", "Full range of the data"]
    assert (dock._level.value(), dock._width.value()) == (2048.0, 4096.0)
    assert "ImagerPixelSpacing" in dock._spacing.toolTip()
    assert "detector" in dock._spacing.toolTip()
    assert "0.15 mm down × 0.16 mm across" in dock._spacing.text()
    identity = dock._identity.text()
    assert "patient-identifying attribute(s)" in identity
    assert "copies none of their values" in identity
    assert "DOE" not in identity

    dock._presets.setCurrentIndex(1)
    dock._presets.activated.emit(1)  # what choosing it in the list does
    assert tuple(layer.contrast_limits) == window_limits(2500.5, 801)
    assert (dock._level.value(), dock._width.value()) == (2500.5, 801.0)
    dock.apply_preset("Full range of the data")
    data = np.asarray(layer.data)
    assert tuple(layer.contrast_limits) == (data.min(), data.max())

    dock._level.setValue(3000)
    dock._width.setValue(1001)
    assert tuple(layer.contrast_limits) == window_limits(3000, 1001)

    # Right-button drag: 100 px right widens, 50 px up raises the level; no zoom.
    from napari_xray.plugin.canvas import camera_model as _camera

    camera = _camera(viewer)
    zoom, span = camera.zoom, np.ptp(layer.contrast_limits_range)
    canvas = viewer.window._qt_viewer.canvas.native
    centre = (canvas.width() / 2, canvas.height() / 2)
    _right_drag(qtbot, canvas, centre,
                [(centre[0] + 50, centre[1] - 25), (centre[0] + 100, centre[1] - 50)])
    level, width = dock.window
    assert width == pytest.approx(1001 + 100 * span / 500)
    assert level == pytest.approx(3000 + 50 * span / 500)
    assert camera.zoom == pytest.approx(zoom) and camera.mouse_zoom is True
    assert (dock._level.value(), dock._width.value()) == pytest.approx((level, width), abs=0.05)


def test_a_png_layer_gets_the_full_range_and_its_derived_spacing(make_napari_viewer, xray_dir):
    viewer = make_napari_viewer()
    dock = _open_dock(viewer)
    (frame,) = viewer.open_sample("napari-xray", "frame")
    viewer.layers.selection.active = frame
    assert dock.presets() == ["Full range of the data"]
    assert "derived from the ChestX-ray8 entry file" in dock._spacing.toolTip()
    assert dock.window == ((0 + 255) / 2 + 0.5, 256)  # 8 bits: WL 128, WW 256
    labels = viewer.add_labels(np.zeros((4, 4), np.uint8))
    viewer.layers.selection.active = labels
    assert dock.layer is None and not dock._level.isEnabled()


def test_narrow_windows_float_images_and_a_closed_dock(make_napari_viewer, qtbot, tmp_path):
    # A LINEAR window of width 1 (a threshold at c − 0.5) opens; napari needs low < high.
    path = write_radiograph(tmp_path / "threshold.dcm",
                            windows=[(3000, 1, "THRESHOLD"), (2048, 4096, "FULL")])
    viewer = make_napari_viewer()
    dock_widget, dock = viewer.window.add_plugin_dock_widget("napari-xray", "Window/level")
    (layer,) = viewer.open(str(path), plugin="napari-xray")
    low, high = layer.contrast_limits
    assert low == 2999.5 and 0 < high - low < 0.01
    viewer.layers.selection.active = layer
    dock.set_window(3100, 0.25)  # below the least LINEAR width: taken as 1
    assert tuple(layer.contrast_limits)[0] == 3099.5

    # A float image is read and set as WL ∓ WW / 2, to the decimals its range needs.
    ramp = viewer.add_image(np.linspace(0, 0.2, 64 * 64, dtype=np.float32).reshape(64, 64))
    viewer.layers.selection.active = ramp
    assert dock.window == pytest.approx((0.1, 0.2))
    dock._level.setValue(0.05)
    dock._width.setValue(0.02)
    assert tuple(ramp.contrast_limits) == pytest.approx((0.04, 0.06))
    assert dock._level.decimals() >= 4

    # Closed, the dock leaves the right button to napari.
    viewer.window.remove_dock_widget(dock_widget)
    before = tuple(ramp.contrast_limits)
    canvas = viewer.window._qt_viewer.canvas.native
    centre = (canvas.width() / 2, canvas.height() / 2)
    _right_drag(qtbot, canvas, centre, [(centre[0] + 100, centre[1] - 50)])
    assert tuple(ramp.contrast_limits) == before
