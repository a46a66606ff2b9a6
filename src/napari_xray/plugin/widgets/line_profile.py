"""Line profile dock: the intensities along a line (or path) of a Shapes layer through
an image and every napari-xray result made from it, on one plot, each scaled to its
own range or each in its own units, with the distance in mm when the frame's pixel
size is known. It follows the frame slider and the line while it is edited, lists
the length of every line, and exports the profile as CSV and PNG.

Profiles are :func:`napari_xray.engine.measure.path_profile` (equal to
``skimage.measure.profile_line``); see :mod:`napari_xray.plugin.measuring` for which
frame a line measures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
)

from napari_xray.engine.measure import path_length, path_profile
from napari_xray.io.measurements import (
    draw_profiles,
    normalised,
    signed,
    write_profile_csv,
    write_profile_png,
    zero_level,
)
from napari_xray.plugin.layers import displayed_frame
from napari_xray.plugin.measuring import frame_spacing, placed_shapes
from napari_xray.plugin.widgets.measure_dock import MeasureDock

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from qtpy.QtWidgets import QWidget

__all__ = ["LineProfileWidget"]

LINE_TYPES = ("line", "path")
LENGTH_COLUMNS = ("Shape", "Type", "Frame", "Length")


def _label(layer, image) -> str:
    """A result's name without the input's (``"LoG σ=3"``), the input's as it is."""
    return layer.name.removesuffix(f" · {image.name}") if layer is not image else layer.name


class LineProfileWidget(MeasureDock):
    """Profiles along a line through an image and its results.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    profile : dict or None
        What the plot shows: ``distance`` (float64), ``unit`` ("mm" or "px"),
        ``columns`` ({layer name: values}), ``shape`` (its index in the Shapes
        layer), ``frame`` (the frame measured, None for a 2D image), ``spacing``
        and ``width``.
    lengths : list of dict
        Every line and path of the Shapes layer: ``index``, ``shape_type``,
        ``frame``, ``length`` and ``unit``.
    """

    draw_text = "Draw a line"
    draw_mode = "add_line"
    new_layer_name = "profile lines"
    shapes_label = "Lines"

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.profile: dict | None = None
        self.lengths: list[dict] = []
        self._curves: dict = {}
        self._drawn_layout = None
        # Laid out when the plot is built or resized, not on every draw (a third of
        # the cost of drawing it while a line is dragged).
        self._figure = Figure(figsize=(4, 3))
        self._canvas = FigureCanvasQTAgg(self._figure)
        self._canvas.mpl_connect("resize_event", lambda event: self._lay_out())
        self._width = QSpinBox()
        self._scaled = QCheckBox("Scale each layer to its own range")
        super().__init__(napari_viewer, parent)

        self._width.setRange(1, 101)
        self._width.setToolTip("Pixels across the line averaged at each point (as "
                               "skimage.measure.profile_line's linewidth)")  # fmt: skip
        self._width.valueChanged.connect(self.schedule)
        self._scaled.setChecked(True)
        self._scaled.setToolTip("Off: each layer on its own plot, in its own units")
        self._scaled.toggled.connect(self.schedule)
        self.form.addRow("Width (px)", self._width)
        self.form.addRow(self._scaled)
        self._canvas.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self._canvas.setMinimumHeight(240)
        self._table = QTableWidget(0, len(LENGTH_COLUMNS))
        self._table.setHorizontalHeaderLabels(list(LENGTH_COLUMNS))
        self._table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self._table.verticalHeader().setVisible(False)
        self._table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self._table.setMaximumHeight(140)
        layout = self.content.layout()
        layout.addWidget(self._canvas)
        layout.addWidget(self._table)
        self.add_exports(("Export CSV…", ".csv", self.export_csv),
                         ("Export PNG…", ".png", self.export_png))  # fmt: skip
        self.start()

    # ------------------------------------------------------------------ public API

    @property
    def width(self) -> int:
        """Pixels across the line averaged at each point."""
        return self._width.value()

    @width.setter
    def width(self, value: int) -> None:
        self._width.setValue(int(value))

    @property
    def scaled(self) -> bool:
        """Whether each layer is scaled to its own range (else each has its own plot)."""
        return self._scaled.isChecked()

    @scaled.setter
    def scaled(self, value: bool) -> None:
        self._scaled.setChecked(bool(value))

    def refresh(self) -> None:
        """Measure the profile and the lengths again, and redraw."""
        image, shapes = self.image_layer, self.shapes_layer
        self.profile, self.lengths = None, []
        if image is None:
            self._show("Choose an image (open one, e.g. File ▸ Open Sample ▸ napari-xray ▸ "
                       "Chest X-ray series).")  # fmt: skip
            return
        if image.ndim not in (2, 3) or getattr(image, "rgb", False) or image.multiscale:
            self._show(f"'{image.name}' is not a grayscale frame or stack of frames.")
            return
        lines = [] if shapes is None else [
            shape for shape in placed_shapes(shapes, image) if shape.shape_type in LINE_TYPES]
        on_screen = displayed_frame(self.viewer, image)
        self.lengths = [self._length(image, line, on_screen) for line in lines]
        self._fill_lengths()
        if not lines:
            self._show(f"Press {self.draw_text} and draw one on the image; a path works too."
                       if shapes is None or not len(shapes.data) else
                       f"'{shapes.name}' holds no line or path: draw one with {self.draw_text}.")
            return
        line = self._chosen(shapes, lines)
        frame = line.frame if line.frame is not None else on_screen
        if frame is not None and not 0 <= frame < image.data.shape[0]:
            self._show(f"Shape {line.index} lies in frame {frame}, which '{image.name}' "
                       "does not have.")  # fmt: skip
            return
        spacing = frame_spacing(image, frame)
        columns = {}
        try:
            for layer in self.measured_layers():
                plane = np.asarray(layer.data[frame] if frame is not None else layer.data)
                distance, values = path_profile(plane, line.vertices, width=self.width,
                                                spacing=spacing)  # fmt: skip
                columns[layer.name] = values
        except ValueError as error:
            self._show(f"Shape {line.index}: {error}")
            return
        unit = "mm" if spacing is not None else "px"
        self.profile = {"distance": distance, "unit": unit, "columns": columns,
                        "shape": line.index, "frame": frame, "spacing": spacing,
                        "width": self.width}  # fmt: skip
        where = f", frame {frame}" if frame is not None else ""
        pixel = (f"; pixel {spacing[0]:.3f} mm down × {spacing[1]:.3f} mm across"
                 if spacing else "; pixel size unknown, so pixels")  # fmt: skip
        self._status.setText(
            f"Shape {line.index} ({line.shape_type}) of '{shapes.name}'{where}: "
            f"{distance[-1]:.1f} {unit}, {len(distance)} samples{pixel}."
        )
        self._draw_profile(image)

    def export_csv(self, path) -> None:
        """Write the profile shown as CSV: ``distance_<unit>``, then each layer's values."""
        profile = self._needed()
        write_profile_csv(path, profile["distance"], profile["columns"], profile["unit"])

    def export_png(self, path) -> None:
        """Write the profile shown as a PNG plot (as the dock draws it, 900 × 450)."""
        profile = self._needed()
        write_profile_png(path, profile["distance"], self._labelled(profile),
                          profile["unit"], scaled=self.scaled, title=self._title())  # fmt: skip

    # ------------------------------------------------------------------ internals

    def _chosen(self, shapes, lines):
        """The selected line (the last selected) or, with none selected, the last line."""
        selected = sorted(index for index in shapes.selected_data
                          if any(line.index == index for line in lines))  # fmt: skip
        index = selected[-1] if selected else lines[-1].index
        return next(line for line in lines if line.index == index)

    def _length(self, image, line, on_screen) -> dict:
        frame = line.frame if line.frame is not None else on_screen
        valid = frame is None or 0 <= frame < image.data.shape[0]
        spacing = frame_spacing(image, frame) if valid else None
        return {"index": line.index, "shape_type": line.shape_type, "frame": line.frame,
                "length": path_length(line.vertices, spacing),
                "unit": "mm" if spacing else "px"}  # fmt: skip

    def _fill_lengths(self) -> None:
        self._table.setRowCount(len(self.lengths))
        for row, entry in enumerate(self.lengths):
            frame = "every" if entry["frame"] is None else str(entry["frame"])
            cells = (str(entry["index"]), entry["shape_type"], frame,
                     f"{entry['length']:.2f} {entry['unit']}")  # fmt: skip
            for column, text in enumerate(cells):
                self._table.setItem(row, column, QTableWidgetItem(text))

    def _show(self, text: str) -> None:
        self._status.setText(text)
        if self._drawn_layout is not None:
            self._figure.clear()
            self._curves, self._drawn_layout = {}, None
            self._canvas.draw_idle()
        if not self.lengths:
            self._table.setRowCount(0)

    def _needed(self) -> dict:
        if self.profile is None:
            raise ValueError("there is no profile to export; draw a line first")
        return self.profile

    def _labelled(self, profile) -> dict:
        """The profile's columns under the names the plot uses (results without the input's)."""
        image = self.image_layer
        layers = {layer.name: layer for layer in self.measured_layers()}
        labels = [_label(layers[name], image) if name in layers and image is not None else name
                  for name in profile["columns"]]  # fmt: skip
        if len(set(labels)) < len(labels):
            labels = list(profile["columns"])
        return dict(zip(labels, profile["columns"].values(), strict=True))

    def _title(self) -> str:
        profile = self.profile
        where = f" frame {profile['frame']}" if profile["frame"] is not None else ""
        image = self.image_layer
        return f"{image.name if image is not None else ''}{where}: shape {profile['shape']}"

    def _lay_out(self) -> None:
        if self._figure.axes and self._canvas.width() > 50 and self._canvas.height() > 50:
            self._figure.tight_layout()

    def _draw_profile(self, image) -> None:
        profile = self.profile
        columns = self._labelled(profile)
        crossing = tuple(signed(values) for values in columns.values())
        layout = (tuple(columns), self.scaled, profile["unit"], crossing)
        if layout != self._drawn_layout:
            self._curves = draw_profiles(self._figure, profile["distance"], columns,
                                         profile["unit"], scaled=self.scaled,
                                         title=self._title())  # fmt: skip
            self._drawn_layout = layout
            self._lay_out()
        else:  # the same curves: move them (much cheaper than building the axes again)
            for name, values in columns.items():
                curve, zero = self._curves[name]
                curve.set_data(profile["distance"], normalised(values) if self.scaled else values)
                if zero is not None:
                    zero.set_ydata([zero_level(values, self.scaled)] * 2)
            for axis in self._figure.axes:
                axis.relim()
                axis.autoscale_view()
            if self._figure.axes:
                self._figure.axes[0].set_title(self._title(), fontsize=9)
        self._canvas.draw_idle()
