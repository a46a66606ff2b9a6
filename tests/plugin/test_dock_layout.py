"""Every napari-xray dock open at once, as from the menu: the window fits 1,280 × 800,
each dock scrolls, and no label of a form is cut off."""

from __future__ import annotations

import numpy as np
import pytest

from napari_xray.engine.operations import OPERATIONS

pytestmark = pytest.mark.viewer

DOCKS = [operation.title for operation in OPERATIONS.values()] + ["Compare all", "Statistics"]


def _open_all(viewer):
    return {name: viewer.window.add_plugin_dock_widget("napari-xray", name)[1] for name in DOCKS}


def _scroll_area_of(widget):
    from qtpy.QtWidgets import QScrollArea

    native = getattr(widget, "native", widget)
    return native if isinstance(native, QScrollArea) else native.findChild(QScrollArea)


def test_all_docks_fit_in_1280_by_800_and_scroll(make_napari_viewer, qtbot, xray_stack):
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.array(xray_stack[:3]), name="chest X-ray series")
    widgets = _open_all(viewer)
    window = viewer.window._qt_window
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 800, hint
    window.resize(1280, 800)
    for _ in range(5):
        QApplication.processEvents()
    assert (window.width(), window.height()) == (1280, 800)
    for name, widget in widgets.items():
        area = _scroll_area_of(widget)
        assert area is not None and area.widgetResizable(), f"{name} does not scroll"
    area = _scroll_area_of(widgets[OPERATIONS["canny"].title])
    assert area.viewport().height() < area.widget().sizeHint().height()
    assert area.verticalScrollBar().maximum() > 0, "the squeezed form scrolls"


def test_form_labels_are_never_clipped(make_napari_viewer, qtbot, xray_stack):
    from qtpy.QtWidgets import QApplication, QLabel

    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.array(xray_stack[:3]), name="chest X-ray series")
    widgets = _open_all(viewer)
    viewer.window._qt_window.resize(1280, 800)
    for _ in range(5):
        QApplication.processEvents()
    texts = set()
    for widget in widgets.values():
        for label in _scroll_area_of(widget).widget().findChildren(QLabel):
            if label.isVisible() and label.text() and not label.wordWrap():
                texts.add(label.text())
                assert label.width() >= label.sizeHint().width(), label.text()
    assert {"Low threshold", "High threshold"} <= texts
