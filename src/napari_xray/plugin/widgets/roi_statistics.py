"""ROI statistics dock: for each rectangle, ellipse and polygon of a Shapes layer and each
chosen layer (an image and its napari-xray results), the count, area (px and mm²),
mean, std, min, max and median on the frame it measures and over the whole stack,
as a table that follows the shapes while they move and the frame slider; CSV export.

Figures are :func:`napari_xray.engine.measure.region_statistics` of the pixels
:func:`~napari_xray.engine.measure.roi_window` finds (those ``skimage.draw`` fills);
the frame's come at once, the stack's from a worker thread a moment later.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QListWidget,
    QListWidgetItem,
    QTableWidget,
    QTableWidgetItem,
)
from superqt.utils import qdebounced

from napari_xray.engine.measure import ROI_TYPES, region_statistics, roi_window
from napari_xray.io.measurements import ROI_COLUMNS, write_roi_csv
from napari_xray.plugin.layers import data_key, displayed_frame, qt_alive, still_computing
from napari_xray.plugin.measuring import frame_spacing, placed_shapes
from napari_xray.plugin.widgets.measure_dock import MeasureDock

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from qtpy.QtWidgets import QWidget

__all__ = ["RoiStatisticsWidget"]

HEADERS = ("ROI", "Type", "Layer", "Frame", "Pixels", "Area (px)", "Area (mm²)",
           "Mean", "Std", "Min", "Max", "Median")  # fmt: skip
#: The stack's figures are computed this long (ms) after the last change of a shape.
STACK_DEBOUNCE_MS = 150
STACK = "stack"


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _stack_figures(jobs) -> list:
    """Worker body: ``[(key, figures)]`` of ``[(key, data, window, spacing)]``."""
    return [(key, region_statistics(np.asarray(data), window, spacing))
            for key, data, window, spacing in jobs]  # fmt: skip


class RoiStatisticsWidget(MeasureDock):
    """Statistics of the regions of a Shapes layer on an image and its results.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    rows : list of dict
        The table's rows, with the keys of
        :data:`napari_xray.io.measurements.ROI_COLUMNS`: per region and layer, one
        for the frame measured (``frame`` its index, None for a 2D image) and one
        for the stack (``frame`` ``"stack"``; its figures None while computing).
    """

    draw_text = "Draw a region"
    draw_mode = "add_rectangle"
    new_layer_name = "regions"
    shapes_label = "Regions"

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        self.rows: list[dict] = []
        self._stack_cache: dict = {}
        self._in_flight: set = set()
        self._left_out: weakref.WeakSet = weakref.WeakSet()
        self._listed: list = []
        self._worker = None
        self._pending: list = []
        self._layers = QListWidget()
        self._stack = QCheckBox("Over the whole stack too")
        super().__init__(napari_viewer, parent)

        self._layers.setToolTip("The layers measured: the image and its results")
        self._layers.setMaximumHeight(110)
        self._layers.itemChanged.connect(self._on_layer_checked)
        self._stack.setChecked(True)
        self._stack.toggled.connect(self.schedule)
        self.form.addRow("Layers", self._layers)
        self.form.addRow(self._stack)
        self._table = QTableWidget(0, len(HEADERS))
        self._table.setHorizontalHeaderLabels(list(HEADERS))
        self._table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self._table.verticalHeader().setVisible(False)
        # Sized to the contents when rows come or go: ResizeToContents would measure
        # every column again for each cell set (1 ms a cell).
        self._table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self._table.setMinimumHeight(160)
        self.content.layout().addWidget(self._table, 1)
        self.add_exports(("Export CSV…", ".csv", self.export_csv))
        self._compute_stack = qdebounced(self._start_stack_worker, timeout=STACK_DEBOUNCE_MS,
                                         parent=self)  # fmt: skip
        self.start()

    # ------------------------------------------------------------------ public API

    @property
    def over_stack(self) -> bool:
        """Whether the stack's figures are measured too."""
        return self._stack.isChecked()

    @over_stack.setter
    def over_stack(self, value: bool) -> None:
        self._stack.setChecked(bool(value))

    def chosen_layers(self) -> list:
        """The layers measured: the image and those of its results left checked."""
        return [layer for layer in self.measured_layers() if layer not in self._left_out]

    def refresh(self) -> None:
        """Measure the regions again and fill the table."""
        image, shapes = self.image_layer, self.shapes_layer
        self._fill_layer_list()
        self.rows = []
        if image is None or shapes is None:
            self._fill_table()
            self._status.setText(
                "Choose an image (e.g. File ▸ Open Sample ▸ napari-xray ▸ Chest X-ray series)."
                if image is None else
                f"Press {self.draw_text} and draw a rectangle, ellipse or polygon on the image.")
            return
        if image.ndim not in (2, 3) or getattr(image, "rgb", False) or image.multiscale:
            self._fill_table()
            self._status.setText(f"'{image.name}' is not a grayscale frame or stack of frames.")
            return
        regions = [shape for shape in placed_shapes(shapes, image)
                   if shape.shape_type in ROI_TYPES]  # fmt: skip
        stacked = image.ndim == 3
        on_screen = displayed_frame(self.viewer, image)
        frames = image.data.shape[0] if stacked else 1
        shared = image.metadata.get("pixel_spacing") if isinstance(image.metadata, dict) else None
        cache, jobs, lazy, problems = {}, [], [], []
        for region in regions:
            try:
                window = roi_window(region.vertices, region.shape_type, image.data.shape[-2:])
            except ValueError as error:  # e.g. a polygon still being drawn
                problems.append(f" Region {region.index} is left out: {error}.")
                continue
            frame = region.frame if region.frame is not None else on_screen
            inside = frame is None or 0 <= frame < frames
            spacing = frame_spacing(image, frame) if inside else None
            for layer in self.chosen_layers():
                plane = layer.data if frame is None else (
                    layer.data[frame] if inside else layer.data[:0])
                self.rows.append(self._row(region, layer, frame, region_statistics(
                    np.asarray(plane), window, spacing)))
                if not (stacked and self.over_stack):
                    continue
                stack_spacing = tuple(shared) if shared is not None else None
                if not isinstance(layer.data, np.ndarray):
                    lazy.append(layer.name)  # a batch store: reading every frame is no update
                    continue
                key = (id(layer), data_key(layer), region.shape_type,
                       region.vertices.tobytes(), stack_spacing)  # fmt: skip
                figures = self._stack_cache.get(key)
                if figures is not None:
                    cache[key] = figures
                elif not still_computing(layer) and key not in self._in_flight:
                    jobs.append((key, layer.data, window, stack_spacing))
                # (frames still being computed: their figures follow on completion)
                self.rows.append(self._row(region, layer, STACK, figures))
        self._stack_cache = cache
        self._pending = jobs
        if jobs:
            self._compute_stack()
        self._fill_table()
        where = f"frame {on_screen}" if on_screen is not None else "the image"
        self._status.setText(
            f"{len(regions)} region{'s' if len(regions) != 1 else ''} of '{shapes.name}' "
            f"on {where}" + (" and over the stack" if stacked and self.over_stack else "")
            + ("." if regions else f": draw one with {self.draw_text}.")
            + (f" '{lazy[0]}' is read lazily, so only its frame is measured." if lazy else "")
            + "".join(problems)
        )

    @property
    def stack_pending(self) -> bool:
        """Whether some of the stack's figures are still being computed."""
        return any(row["frame"] == STACK and row["count"] is None for row in self.rows)

    def export_csv(self, path) -> None:
        """Write the table as CSV (:func:`napari_xray.io.measurements.write_roi_csv`)."""
        if not self.rows:
            raise ValueError("there are no regions to export; draw one first")
        write_roi_csv(path, self.rows)

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _row(region, layer, frame, figures) -> dict:
        row = {"roi": region.index, "shape_type": region.shape_type, "layer": layer.name,
               "frame": frame}  # fmt: skip
        row.update(dict.fromkeys(ROI_COLUMNS[4:]) if figures is None else figures)
        return row

    def _fill_layer_list(self) -> None:
        layers = self.measured_layers()
        listed = [ref() for ref in self._listed]
        names = [layer.name for layer in layers]
        shown = [self._layers.item(i).text() for i in range(self._layers.count())]
        if len(listed) == len(layers) and all(
                a is b for a, b in zip(listed, layers, strict=True)) and names == shown:
            return
        self._listed = [weakref.ref(layer) for layer in layers]
        self._layers.blockSignals(True)
        self._layers.clear()
        for position, layer in enumerate(layers):
            item = QListWidgetItem(layer.name)
            if position == 0:  # the image itself is always measured
                item.setFlags(item.flags() & ~Qt.ItemIsUserCheckable)
            else:
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Unchecked if layer in self._left_out else Qt.Checked)
            self._layers.addItem(item)
        self._layers.blockSignals(False)

    def _on_layer_checked(self, item) -> None:
        position = self._layers.row(item)
        layer = self._listed[position]() if 0 <= position < len(self._listed) else None
        if layer is None:
            return
        if item.checkState() == Qt.Checked:
            self._left_out.discard(layer)
        else:
            self._left_out.add(layer)
        self.schedule()

    def set_layer_measured(self, layer, measured: bool) -> None:
        """Measure the result ``layer`` (or leave it out), as its box in the list does."""
        self._fill_layer_list()
        for position in range(1, self._layers.count()):
            if self._listed[position]() is layer:
                self._layers.item(position).setCheckState(Qt.Checked if measured else Qt.Unchecked)
                return
        raise ValueError(f"'{layer.name}' is not a result of the image measured")

    def _fill_table(self) -> None:
        table = self._table
        table.setUpdatesEnabled(False)
        resize = table.rowCount() != len(self.rows)
        table.setRowCount(len(self.rows))
        for row, entry in enumerate(self.rows):
            figures_pending = entry["frame"] == STACK and entry["count"] is None
            for column, name in enumerate(ROI_COLUMNS):
                text = "…" if figures_pending and column >= 4 else _text(entry[name])
                item = table.item(row, column)
                if item is None:  # new cells; existing ones change their text only (cheap)
                    table.setItem(row, column, QTableWidgetItem(text))
                elif item.text() != text:
                    item.setText(text)
        if resize:
            table.resizeColumnsToContents()
        table.setUpdatesEnabled(True)

    def _start_stack_worker(self) -> None:
        from napari.qt.threading import create_worker

        from napari_xray.plugin.threads import start_worker

        jobs = [job for job in self._pending if job[0] not in self._in_flight]
        self._pending = []
        if not jobs:
            return
        keys = {job[0] for job in jobs}
        self._in_flight |= keys
        worker = create_worker(_stack_figures, jobs, _start_thread=False)
        worker.returned.connect(self._on_stack_figures)
        self_ref = weakref.ref(self)

        def _done(keys=keys) -> None:
            owner = self_ref()
            if owner is not None:
                owner._in_flight -= keys

        worker.finished.connect(_done)
        self._worker = worker
        start_worker(worker)

    def _on_stack_figures(self, results) -> None:
        if not qt_alive(self):
            return
        self._stack_cache.update(results)
        self._in_flight -= {key for key, _ in results}
        self.schedule()
