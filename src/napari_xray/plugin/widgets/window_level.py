"""Window/level dock: the selected image's display window as radiology reads it
(WL, WW), the windows its DICOM header names as presets, and a drag with the right
mouse button on the canvas that changes them: across for the width, up and down
for the level. The drag works while the dock is shown.

The window is the layer's contrast limits, read and set in the DICOM convention
of the preset last chosen (:func:`napari_xray.io.dicom_display.window_limits`):
LINEAR for integer images (``limits = WL − 0.5 ∓ (WW − 1) / 2``; 8 bits at full
range: WL 128, WW 256), ``WL ∓ WW / 2`` for floating-point ones.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from napari_xray.io.dicom_display import limits_window, window_limits
from napari_xray.plugin.canvas import camera_model
from napari_xray.plugin.layers import data_range, qt_alive, referenced_layer, unwrap
from napari_xray.plugin.widgets.form import MIN_DOCK_HEIGHT

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["WindowLevelWidget"]

#: Mouse button napari (vispy) numbers 2: the right one.
RIGHT_BUTTON = 2
#: Screen pixels of right-button drag that change the width (or the level) by the
#: whole of the layer's contrast range.
DRAG_PIXELS_PER_RANGE = 500
_FULL_RANGE = "Full range of the data"


class WindowLevelWidget(QWidget):
    """WL/WW of the selected image layer, its header's windows, and a right-button drag.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        napari_viewer = unwrap(napari_viewer)
        self.viewer = napari_viewer
        self._layer_ref = None
        self._updating = False
        self._function = "LINEAR"  # the convention WL/WW are read and set in
        self._full_ranges: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

        self._title = QLabel()
        self._title.setWordWrap(True)
        self._presets = QComboBox()
        self._presets.setToolTip("The display windows the DICOM header names (its default "
                                 "first), and the data's full range")  # fmt: skip
        self._presets.activated.connect(self._on_preset)
        self._level = QDoubleSpinBox()
        self._width = QDoubleSpinBox()
        for box, tip in ((self._level, "Window level (centre), in the layer's values"),
                         (self._width, "Window width, in the layer's values")):  # fmt: skip
            box.setRange(-1e12, 1e12)
            box.setKeyboardTracking(False)
            box.setToolTip(tip + ". Or drag with the right mouse button on the canvas: "
                           "across for the width, up and down for the level.")  # fmt: skip
            box.valueChanged.connect(self._on_typed)
        self._spacing = QLabel()
        self._spacing.setWordWrap(True)
        self._identity = QLabel()
        self._identity.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Preset", self._presets)
        form.addRow("WL", self._level)
        form.addRow("WW", self._width)
        layout = QVBoxLayout(self)
        layout.addWidget(self._title)
        layout.addLayout(form)
        layout.addWidget(self._spacing)
        layout.addWidget(self._identity)
        layout.addStretch(1)
        self.setMinimumHeight(MIN_DOCK_HEIGHT)

        napari_viewer.layers.selection.events.active.connect(self._on_active)
        napari_viewer.mouse_drag_callbacks.append(self._drag)
        self.destroyed.connect(lambda *_: _remove_callback(napari_viewer, self._drag))
        self._on_active()

    # ------------------------------------------------------------------ public API

    @property
    def layer(self) -> Layer | None:
        """The image layer whose window is shown."""
        return referenced_layer(self.viewer, self._layer_ref)

    @property
    def window(self) -> tuple[float, float] | None:
        """(WL, WW) of the layer's contrast limits, or None without an image layer."""
        layer = self.layer
        return None if layer is None else limits_window(*layer.contrast_limits, self._function)

    def presets(self) -> list[str]:
        """The names offered in the preset list."""
        return [self._presets.itemText(i) for i in range(self._presets.count())]

    def apply_preset(self, name: str) -> None:
        """Show the layer through the preset called ``name`` (as choosing it does)."""
        index = self.presets().index(name)
        self._presets.setCurrentIndex(index)
        self._on_preset(index)

    def set_window(self, level: float, width: float) -> None:
        """Show the layer through the window WL ``level``, WW ``width``.

        The width is at least 1 in the LINEAR convention (integer images), and
        positive otherwise; a smaller one is taken as that least one.
        """
        layer = self.layer
        if layer is None:
            return
        width = max(width, self._least_width())
        layer.contrast_limits = window_limits(level, width, self._function)

    def _least_width(self) -> float:
        if self._function == "LINEAR":
            return 1.0
        low, high = self._full_range(self.layer)
        return (high - low) * 1e-6

    # ------------------------------------------------------------------ updates

    def _on_active(self, event=None) -> None:
        if not qt_alive(self):
            return
        previous = self.layer
        if previous is not None:
            previous.events.contrast_limits.disconnect(self._show_window)
        from napari.layers import Image

        layer = self.viewer.layers.selection.active
        if not isinstance(layer, Image) or getattr(layer, "rgb", False):
            self._layer_ref = None
            self._title.setText("Select a grayscale image layer to set its window.")
            self._presets.clear()
            self._spacing.setText("")
            self._identity.setText("")
            for box in (self._level, self._width):
                box.setEnabled(False)
            return
        self._layer_ref = weakref.ref(layer)
        self._full_range(layer)  # before any preset widens napari's slider range
        self._function = _convention(layer)
        self._set_decimals(layer)
        layer.events.contrast_limits.connect(self._show_window)
        self._title.setText(f"'{layer.name}'")
        self._presets.clear()
        for window in layer.metadata.get("windows") or []:
            self._presets.addItem(window["name"], window)
            self._presets.setItemData(
                self._presets.count() - 1,
                f"WL {window['center']:g} / WW {window['width']:g} ({window['function']}, "
                "from the DICOM header)",
                3,  # Qt.ToolTipRole
            )
        self._presets.addItem(_FULL_RANGE, None)
        for box in (self._level, self._width):
            box.setEnabled(True)
        self._spacing.setText(_spacing_text(layer))
        self._spacing.setToolTip(_spacing_tooltip(layer))
        self._identity.setText(_identity_text(layer))
        self._show_window()

    def _show_window(self, event=None) -> None:
        if not qt_alive(self) or self.window is None:
            return
        level, width = self.window
        self._updating = True
        try:
            self._level.setValue(level)
            self._width.setValue(width)
        finally:
            self._updating = False

    def _on_typed(self, _value=None) -> None:
        if not self._updating:
            self.set_window(self._level.value(), self._width.value())

    def _on_preset(self, index: int) -> None:
        layer = self.layer
        if layer is None or index < 0:
            return
        window = self._presets.itemData(index)
        if window is None:
            self._function = _convention(layer)
            limits = self._full_range(layer)
        else:
            # Read back as the header states it; a VOI LUT's span as its exact ends.
            self._function = window["function"] if window["function"] == "LINEAR" \
                else "LINEAR_EXACT"
            limits = window["limits"]
        layer.contrast_limits = tuple(float(v) for v in limits)  # napari widens its range

    def _docked(self) -> bool:
        """Whether this widget sits in a dock of the viewer's window that is not closed."""
        from qtpy.QtWidgets import QDockWidget

        widget = self.parentWidget()
        while widget is not None and not isinstance(widget, QDockWidget):
            widget = widget.parentWidget()
        return widget is not None and widget.parentWidget() is not None and not widget.isHidden()

    def _full_range(self, layer) -> tuple[float, float]:
        """The data's value range, kept per layer: its min and max for data in memory,
        napari's slider range for lazy data (never read whole)."""
        if layer not in self._full_ranges:
            found = None
            if isinstance(layer.data, np.ndarray) and layer.data.size:
                low, high = float(np.nanmin(layer.data)), float(np.nanmax(layer.data))
                if np.isfinite(low) and np.isfinite(high):
                    found = (low, high) if high > low else (low, low + 1.0)
            self._full_ranges[layer] = found or data_range(layer)
        return self._full_ranges[layer]

    def _set_decimals(self, layer) -> None:
        """Enough decimals for a window a thousandth of the data's range."""
        low, high = self._full_range(layer)
        decimals = int(np.clip(3 - np.floor(np.log10(max(high - low, 1e-12))), 1, 8))
        for box in (self._level, self._width):
            box.setDecimals(decimals)
            box.setSingleStep(10.0 ** -(decimals - 1))

    def _drag(self, viewer, event):
        """Right-button drag on the canvas: across changes the width, up/down the level."""
        layer = self.layer
        if event.button != RIGHT_BUTTON or layer is None or not qt_alive(self):
            return
        if not self._docked():  # the dock was closed (napari keeps the widget)
            return
        camera = camera_model(viewer)
        zoom = camera.mouse_zoom
        camera.mouse_zoom = False  # the right button would zoom as well
        try:
            start = np.asarray(event.pos, dtype=float)
            level, width = self.window
            low, high = layer.contrast_limits_range
            step = max(high - low, 1e-12) / DRAG_PIXELS_PER_RANGE
            yield
            while event.type == "mouse_move":
                dx, dy = np.asarray(event.pos, dtype=float) - start
                # Right widens the window; up (smaller y) raises the level.
                self.set_window(level - dy * step, width + dx * step)
                yield
        finally:
            camera.mouse_zoom = zoom


def _convention(layer) -> str:
    """How WL/WW read a layer without a header's window: LINEAR for integer pixels
    (DICOM's own), exact ends for floating-point ones."""
    integer = np.issubdtype(layer.dtype, np.integer) or np.issubdtype(layer.dtype, np.bool_)
    return "LINEAR" if integer else "LINEAR_EXACT"


def _spacing_text(layer) -> str:
    spacing = layer.metadata.get("pixel_spacing")
    if spacing is None:
        return "Pixel size unknown: distances are in pixels."
    down, across = spacing
    return f"Pixel: {down:g} mm down × {across:g} mm across (scale bar in mm)"


def _spacing_tooltip(layer) -> str:
    source = layer.metadata.get("pixel_spacing_source")
    if source == "ImagerPixelSpacing":
        return ("From ImagerPixelSpacing: the spacing at the detector. Objects nearer the "
                "X-ray source are magnified, so sizes in the patient are somewhat smaller.")
    if source == "PixelSpacing":
        return "From PixelSpacing: the spacing in the patient, as the header states it."
    return source or "No spacing in the file's metadata."


def _identity_text(layer) -> str:
    """What the DICOM header held that identifies the patient (names of attributes only)."""
    held = layer.metadata.get("identifying_attributes") or []
    if not held:
        return ""
    shown = ", ".join(held[:4]) + (f" and {len(held) - 4} more" if len(held) > 4 else "")
    removed = " (marked de-identified)" if layer.metadata.get("identity_removed") else ""
    return (f"The file held {len(held)} patient-identifying attribute(s){removed}: {shown}. "
            "napari-xray copies none of their values.")


def _remove_callback(viewer, callback) -> None:
    try:
        viewer.mouse_drag_callbacks.remove(callback)
    except ValueError:
        pass
