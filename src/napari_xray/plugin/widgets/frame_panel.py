"""Frame details dock: what ChestX-ray8's entry file says about the frame on screen
(image, findings, follow-up, age and sex, view, pixel size), following the frame
slider, a table of all frames of the layer where a click jumps to a frame, and a
button that adds the layer's boxes from ``BBox_List_2017.csv``.

It shows the selected layer's ``metadata["frames"]`` (see
:func:`napari_xray.io.chestxray8.frames_entries`); for a napari-xray result it shows
the frames of the layer it was computed from.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_xray.io.chestxray8 import findings_text
from napari_xray.plugin.layers import (
    displayed_frame,
    qt_alive,
    referenced_layer,
    unwrap,
)
from napari_xray.plugin.measuring import input_of
from napari_xray.plugin.widgets.form import MIN_DOCK_HEIGHT

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["FramePanelWidget", "frame_lines"]

COLUMNS = ("Frame", "Image", "Findings", "Follow-up", "Age/sex", "View", "Pixel (mm)")


def _age_text(entry: dict) -> str:
    flag = "" if entry["age_plausible"] else " (implausible, as in the entry file)"
    return f"{entry['age']} y{flag}, {entry['sex']}"


def _pixel_text(entry: dict, unit: str = "") -> str:
    down, across = entry["pixel_size_mm"]
    return f"{down:.3f} {unit}down × {across:.3f} {unit}across"


def frame_lines(entry: dict | None, mixed_views: bool = False) -> list[str]:
    """The panel's lines for one frame's row (``None``: the entry file has none)."""
    if entry is None:
        return ["The entry file has no row for this frame."]
    view = entry["view"]
    if mixed_views:
        view += " — this series mixes PA and AP views: compare such frames with care"
    return [
        f"Image: {entry['image']}",
        f"Findings: {findings_text(entry)}",
        f"Follow-up #{entry['follow_up']} of patient {entry['patient_id']}",
        f"Age/sex: {_age_text(entry)}",
        f"View: {view}",
        f"Pixel: {_pixel_text(entry, 'mm ')} (derived from the entry file's original "
        "size and spacing, not read from the image)",
    ]


def _has_rows(layer) -> bool:
    """Whether ``layer`` carries ChestX-ray8 rows (see ``frames_entries``)."""
    metadata = layer.metadata
    return isinstance(metadata.get("frames"), list) and isinstance(
        metadata.get("chestxray8"), dict) and "entry_file" in metadata["chestxray8"]


class FramePanelWidget(QWidget):
    """The ChestX-ray8 row of the frame on screen, and a table of the layer's frames.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    frame : int or None
        The frame on screen of the layer shown (``None`` when no layer has rows).
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        napari_viewer = unwrap(napari_viewer)
        self.viewer = napari_viewer
        self.frame: int | None = None
        self._layer_ref = None
        self._shown_frames: list | None = None

        self._title = QLabel()
        self._title.setWordWrap(True)
        self._details = QLabel()
        self._details.setWordWrap(True)
        self._details.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self._table = QTableWidget(0, len(COLUMNS))
        self._table.setHorizontalHeaderLabels(list(COLUMNS))
        self._table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self._table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self._table.setSelectionMode(QAbstractItemView.SingleSelection)
        self._table.verticalHeader().setVisible(False)
        self._table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self._table.setToolTip("Click a frame to show it")
        self._table.cellClicked.connect(self._on_clicked)
        self._boxes_button = QPushButton("Add boxes…")
        self._boxes_button.setToolTip(
            "Add the layer's boxes from BBox_List_2017.csv (found beside its files or "
            "the entry file, or in NAPARI_XRAY_CHESTXRAY8_DIR; else you pick it)")
        self._boxes_button.clicked.connect(self._on_boxes_clicked)
        self._status = QLabel()
        self._status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self._title)
        layout.addWidget(self._details)
        layout.addWidget(self._table, 1)
        layout.addWidget(self._boxes_button)
        layout.addWidget(self._status)
        self.setMinimumHeight(MIN_DOCK_HEIGHT)

        napari_viewer.layers.selection.events.active.connect(self._on_active)
        napari_viewer.layers.events.removed.connect(self._on_active)
        napari_viewer.dims.events.current_step.connect(self._follow_slider)
        self._on_active()

    # ------------------------------------------------------------------ public API

    @property
    def layer(self) -> Layer | None:
        """The layer whose frames are shown: the selected layer, or the one it was made from."""
        return referenced_layer(self.viewer, self._layer_ref)

    @property
    def status(self) -> str:
        """The last message of the "Add boxes…" button."""
        return self._status.text()

    def add_boxes(self, box_file=None):
        """Add the shown layer's boxes (what the button does); returns the Shapes layer.

        Without ``box_file`` the file is looked for; when none is found, a file
        dialog asks for it. A problem is shown in the dock, never raised.
        """
        from napari_xray.errors import XrayError
        from napari_xray.io.chestxray8 import find_box_file
        from napari_xray.plugin.boxes import add_boxes, metadata_folders

        layer = self.layer
        if layer is None:
            self._status.setText("Select a layer of ChestX-ray8 frames first.")
            return None
        if box_file is None and find_box_file(*metadata_folders(layer.metadata)) is None:
            from qtpy.QtWidgets import QFileDialog

            box_file, _ = QFileDialog.getOpenFileName(
                self, "Open ChestX-ray8's box file", "BBox_List_2017.csv", "*.csv")
            if not box_file:
                return None
        try:
            shapes = add_boxes(self.viewer, layer, box_file)
        except XrayError as error:
            self._status.setText(str(error))
            return None
        self._status.setText(f"Added {len(shapes.data)} box(es) as '{shapes.name}'.")
        return shapes

    @property
    def details(self) -> str:
        """The text shown for the frame on screen."""
        return self._details.text()

    def table_rows(self) -> list[list[str]]:
        """The table's cells, row by row."""
        return [
            [self._table.item(row, column).text() for column in range(len(COLUMNS))]
            for row in range(self._table.rowCount())
        ]

    def show_frame(self, index: int) -> None:
        """Move the frame slider to frame ``index`` of the layer shown (what a click does)."""
        layer = self.layer
        if layer is None or layer.ndim < 3:
            return
        world = layer.data_to_world((index,) + (0,) * (layer.ndim - 1))
        # The layer's first axis is the viewer's axis ndim − layer.ndim (napari aligns
        # layers at their last axes).
        self.viewer.dims.set_point(self.viewer.dims.ndim - layer.ndim, float(world[0]))

    # ------------------------------------------------------------------ updates

    def _frames_layer(self, selected) -> Layer | None:
        """``selected`` if it has frame rows, else the layer a napari-xray result (or a
        boxes layer) came from."""
        if selected is None:
            return None
        if _has_rows(selected):
            return selected
        source = input_of(self.viewer, selected)  # a result: the layer it came from
        name = selected.metadata.get("image_layer")  # a boxes layer: its image's name
        if source is selected and name is not None and name in self.viewer.layers:
            source = self.viewer.layers[name]
        return source if source is not selected and _has_rows(source) else None

    def _on_active(self, event=None) -> None:
        if not qt_alive(self):
            return
        selected = self.viewer.layers.selection.active
        layer = self._frames_layer(selected)
        self._layer_ref = weakref.ref(layer) if layer is not None else None
        self._boxes_button.setEnabled(layer is not None)
        if layer is None:
            self.frame, self._shown_frames = None, None
            self._table.setRowCount(0)
            self._details.setText("")
            name = "no layer is selected" if selected is None else f"'{selected.name}' has none"
            self._title.setText(
                f"ChestX-ray8 frame details: {name}. Open PNGs that lie beside "
                "Data_Entry_2017.csv (or set NAPARI_XRAY_CHESTXRAY8_DIR), or the series sample."
            )
            return
        entry_file = layer.metadata["chestxray8"]["entry_file"]
        self._title.setText(f"'{layer.name}': rows of {Path(entry_file).name}")
        self._title.setToolTip(entry_file)
        if self._shown_frames is not layer.metadata["frames"]:
            self._fill_table(layer.metadata["frames"])
        self._follow_slider()

    def _fill_table(self, frames: list) -> None:
        self._shown_frames = frames
        self._table.setRowCount(len(frames))
        for row, entry in enumerate(frames):
            cells = [str(row)] + (
                ["(no row)", "", "", "", "", ""]
                if entry is None
                else [entry["image"], findings_text(entry), str(entry["follow_up"]),
                      _age_text(entry), entry["view"], _pixel_text(entry)]
            )  # fmt: skip
            for column, text in enumerate(cells):
                self._table.setItem(row, column, QTableWidgetItem(text))

    def _follow_slider(self, event=None) -> None:
        if not qt_alive(self):
            return
        layer = self.layer
        if layer is None:
            return
        index = displayed_frame(self.viewer, layer) if layer.ndim >= 3 else 0
        frames = layer.metadata["frames"]
        self.frame = index
        mixed = layer.metadata["chestxray8"].get("mixed_views", False)
        lines = frame_lines(frames[index] if index < len(frames) else None, mixed)
        where = f"Frame {index} of 0–{len(frames) - 1}" if len(frames) > 1 else "One frame"
        self._details.setText("\n".join([where, *lines]))
        self._table.selectRow(index)

    def _on_clicked(self, row: int, _column: int) -> None:
        self.show_frame(row)

    def _on_boxes_clicked(self, _checked=False) -> None:
        self.add_boxes()
