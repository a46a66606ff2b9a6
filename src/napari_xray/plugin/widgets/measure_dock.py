"""What the Line profile and ROI statistics docks share: the image and Shapes layer they
measure, a button that starts drawing, live updates (throttled) when a shape, the
frame slider or a layer changes, and file exports written whole or not at all.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qthrottled

from napari_xray.plugin.hub import viewer_hub
from napari_xray.plugin.layers import (
    image_layer_choices,
    qt_alive,
    reset_layer_choices,
    unwrap,
)
from napari_xray.plugin.measuring import input_of, result_entry, results_of, shapes_layers
from napari_xray.plugin.widgets.form import MIN_DOCK_HEIGHT

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["MeasureDock"]

#: At most one update per this many ms while a shape is dragged or the slider moves.
THROTTLE_MS = 30
_LAYER_LIST_EVENTS = ("inserted", "removed", "moved")


class MeasureDock(QWidget):
    """A dock measuring the shapes of a Shapes layer on an image and its results.

    Subclasses set :attr:`draw_text`, :attr:`draw_mode` and :attr:`new_layer_name`,
    add their own widgets to :attr:`content`, implement :meth:`refresh` and call
    :meth:`start` once they are built.
    """

    draw_text = "Draw"
    draw_mode = "add_line"
    new_layer_name = "shapes"
    shapes_label = "Shapes"

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        napari_viewer = unwrap(napari_viewer)
        self.viewer = napari_viewer
        self._watched: list[tuple[weakref.ref, str]] = []
        self._started = False

        self._image = ComboBox(choices=self._image_choices, nullable=True,
                               tooltip="The image measured, with every napari-xray result "
                               "made from it")  # fmt: skip
        self._shapes = ComboBox(choices=self._shapes_choices, nullable=True,
                                tooltip="The Shapes layer whose shapes are measured")
        self._draw = QPushButton(self.draw_text)
        self._draw.setToolTip(
            f"Draw in '{self.shapes_label}' (a new 2D Shapes layer, shown on every frame, "
            "when none is chosen)"
        )
        self._draw.clicked.connect(self.start_drawing)
        shapes_row = QHBoxLayout()
        shapes_row.addWidget(self._shapes.native, 1)
        shapes_row.addWidget(self._draw)
        self.form = QFormLayout()
        self.form.addRow("Image", self._image.native)
        self.form.addRow(self.shapes_label, shapes_row)
        self._status = QLabel()
        self._status.setWordWrap(True)
        self._status.setTextInteractionFlags(Qt.TextSelectableByMouse)

        self.content = QWidget()
        layout = QVBoxLayout(self.content)
        layout.addLayout(self.form)
        layout.addWidget(self._status)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(self.content)
        scroll.setMinimumHeight(MIN_DOCK_HEIGHT)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        self._throttled = qthrottled(self._refresh_if_alive, timeout=THROTTLE_MS, parent=self)
        for name in _LAYER_LIST_EVENTS:
            getattr(napari_viewer.layers.events, name).connect(self._on_layers_changed)
        napari_viewer.dims.events.current_step.connect(self.schedule)
        viewer_hub(napari_viewer).outputs_completed.connect(self.schedule)
        self._image.changed.connect(self._on_choice)
        self._shapes.changed.connect(self._on_choice)

    # ------------------------------------------------------------------ public API

    @property
    def image_layer(self) -> Layer | None:
        """The image measured (with its napari-xray results)."""
        return self._image.value

    @image_layer.setter
    def image_layer(self, layer: Layer) -> None:
        self._image.reset_choices()
        self._image.value = unwrap(layer)

    @property
    def shapes_layer(self) -> Layer | None:
        """The Shapes layer whose shapes are measured."""
        return self._shapes.value

    @shapes_layer.setter
    def shapes_layer(self, layer: Layer) -> None:
        self._shapes.reset_choices()
        self._shapes.value = unwrap(layer)

    @property
    def status(self) -> str:
        """The dock's status line."""
        return self._status.text()

    def measured_layers(self) -> list[Layer]:
        """The image and its napari-xray results, in layer list order."""
        image = self.image_layer
        return [] if image is None else [image, *results_of(self.viewer, image)]

    def start_drawing(self) -> Layer | None:
        """Select the Shapes layer (made when there is none) in this dock's drawing mode."""
        image = self.image_layer
        layer = self.shapes_layer
        if layer is None:
            if image is None:
                self._status.setText("Choose an image first: the new shapes are placed on it.")
                return None
            layer = self.viewer.add_shapes(
                ndim=2, name=self.new_layer_name, edge_width=3, edge_color="yellow",
                face_color="transparent", scale=image.scale[-2:], translate=image.translate[-2:],
                units=tuple(image.units)[-2:],
            )  # fmt: skip
            self.shapes_layer = layer
        self.viewer.layers.selection.active = layer
        layer.mode = self.draw_mode
        return layer

    def refresh(self) -> None:  # pragma: no cover - subclasses measure
        """Measure again."""
        raise NotImplementedError

    def schedule(self, *args) -> None:
        """Measure again soon: at once, then at most once per :data:`THROTTLE_MS`."""
        # A bound method (not the throttled object itself) is what napari's and
        # psygnal's emitters hold weakly, so a closed dock leaves nothing connected.
        if qt_alive(self):
            self._throttled()

    def start(self) -> None:
        """Choose the layers to measure (from the selection) and measure them."""
        self._started = True
        self._choose_defaults()
        self.refresh()

    # ------------------------------------------------------------------ internals

    def _image_choices(self, widget=None):
        return image_layer_choices(self.viewer,
                                   exclude=lambda layer: result_entry(layer) is not None)

    def _shapes_choices(self, widget=None):
        return [(layer.name, layer) for layer in shapes_layers(self.viewer)]

    def _choose_defaults(self) -> None:
        active = unwrap(self.viewer.layers.selection.active)
        self._image.reset_choices()
        self._shapes.reset_choices()
        source = input_of(self.viewer, active)
        images = [layer for _, layer in self._image_choices()]
        if any(layer is source for layer in images):
            self._image.value = source
        elif images:
            self._image.value = images[0]
        shapes = self._shapes_choices()
        if any(layer is active for _, layer in shapes):
            self._shapes.value = active
        elif shapes:
            self._shapes.value = shapes[-1][1]
        self._on_choice()

    def _on_layers_changed(self, event=None) -> None:
        if not (self._started and qt_alive(self)):
            return
        had_shapes = self.shapes_layer is not None
        self._reset_pickers()
        if self._image.value is None and self._image_choices():
            self._image.value = self._image_choices()[0][1]
        if not had_shapes and self._shapes_choices():
            self._shapes.value = self._shapes_choices()[-1][1]  # the one just added
        self._on_choice()

    def _on_choice(self, value=None) -> None:
        if not (self._started and qt_alive(self)):
            return
        self._watch()
        self.schedule()

    def _watch(self) -> None:
        """Follow the data of the layers measured and every edit of the shapes."""
        for ref, name in self._watched:
            layer = ref()
            if layer is not None:
                getattr(layer.events, name).disconnect(
                    self._on_name if name == "name" else self.schedule)
        self._watched = []
        watched = [(layer, event) for layer in self.measured_layers()
                   for event in ("data", "name")]  # fmt: skip
        shapes = self.shapes_layer
        if shapes is not None:
            # napari emits "data" when an edit ends; "set_data" on every redraw of a drag.
            watched += [(shapes, "data"), (shapes, "set_data"), (shapes, "highlight"),
                        (shapes, "name")]  # fmt: skip
        for layer, name in watched:
            getattr(layer.events, name).connect(self._on_name if name == "name" else
                                                self.schedule)  # fmt: skip
            self._watched.append((weakref.ref(layer), name))

    def _reset_pickers(self) -> None:
        """New choices for both pickers, each keeping its layer (renamed or not)."""
        reset_layer_choices(self._image)
        reset_layer_choices(self._shapes)

    def _on_name(self, event=None) -> None:
        """A measured layer was renamed: the pickers and the rows say so."""
        if not (self._started and qt_alive(self)):
            return
        self._reset_pickers()
        # After every other handler of the rename (the results' input_layer follows).
        QTimer.singleShot(0, self.schedule)

    def _refresh_if_alive(self, *args) -> None:
        if self._started and qt_alive(self):
            self.refresh()

    def add_exports(self, *exports: tuple[str, str, object]) -> None:
        """A row of buttons at the end of the dock: ``(text, suffix, export(path))`` each
        asks for a file name and writes it, and the line below says where or why not."""
        row = QHBoxLayout()
        for text, suffix, export in exports:
            button = QPushButton(text)
            button.clicked.connect(
                lambda _=False, t=text, s=suffix, e=export: self._ask_path(t, s, e))
            row.addWidget(button)
        self._saved = QLabel()
        self._saved.setWordWrap(True)
        self.content.layout().addLayout(row)
        self.content.layout().addWidget(self._saved)
        self.content.layout().addStretch(1)

    def _ask_path(self, caption: str, suffix: str, export) -> None:
        dialog = QFileDialog(self, caption.rstrip("…"), f"{self.new_layer_name}{suffix}",
                             f"*{suffix}")  # fmt: skip
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        # The suffix is added before Qt asks whether to replace an existing file.
        dialog.setDefaultSuffix(suffix.lstrip("."))
        if not dialog.exec() or not dialog.selectedFiles():
            return
        path = dialog.selectedFiles()[0]
        try:
            export(path)
        except (OSError, ValueError) as error:
            self._saved.setText(f"Could not write {path}: {error}. Choose another place.")
            return
        self._saved.setText(f"Wrote {path}.")
