"""The "What the tutorial gets wrong" dock: for the frame on screen, the tutorial's four
mistakes beside napari-xray's results with their difference maps, as layers in grid
view with their captions; Canny's stages as layers; the Gaussian's transfer function
for a σ beside the tutorial's.

The pairs are :func:`napari_xray.engine.explain.explain_pairs`, computed in a worker.
"Restore" puts back the grid, the camera and what was visible, and hides the pairs'
layers, which the next "Show" fills again (as Compare all does: removing many large
layers at once is what napari handles worst).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_xray.engine.explain import (
    CANNY_STAGES,
    PAIRS,
    TUTORIAL_SIGMA,
    canny_stages,
    explain_pairs,
    gaussian_transfer,
)
from napari_xray.explain import DISPLAY_PERCENTILE, display_range
from napari_xray.plugin.canvas import grid_model
from napari_xray.plugin.comparison import SavedView
from napari_xray.plugin.layers import (
    displayed_frame,
    image_layer_choices,
    input_problem,
    layer_alive,
    napari_colormap,
    qt_alive,
    reset_layer_choices,
    unwrap,
)
from napari_xray.plugin.measuring import result_entry
from napari_xray.plugin.widgets.form import MIN_DOCK_HEIGHT

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["ExplainWidget"]

ALL_PAIRS = "All four"
#: Frequencies (cycles per pixel) of the transfer-function plot: up to Nyquist.
FREQUENCIES = np.linspace(0.0, 0.5, 201)


def _is_own(layer) -> bool:
    return isinstance(layer.metadata, dict) and "napari_xray_explain" in layer.metadata


class _ShownView:
    """The pairs' layers and the view they replaced: kept apart from the dock, so that
    closing the dock can still put the view back."""

    def __init__(self, viewer) -> None:
        self._viewer_ref = weakref.ref(viewer)
        self.layers: dict = {}
        self.saved: SavedView | None = None

    def save(self) -> None:
        viewer = self._viewer_ref()
        if self.saved is None and viewer is not None:
            self.saved = SavedView(viewer, skip=lambda layer: False)

    def put_back(self, *args) -> None:
        """Hide the pairs' layers; grid, camera and visibility as they were."""
        viewer = self._viewer_ref()
        if self.saved is None or viewer is None:
            return
        try:
            for layer in self.layers.values():
                if layer_alive(viewer, layer):
                    layer.visible = False
            self.saved.put_back(viewer)
        except RuntimeError:  # pragma: no cover - the viewer's window is closing too
            pass
        self.saved = None


class ExplainWidget(QWidget):
    """The tutorial's mistakes on the frame on screen, Canny's stages, the transfer function.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    pairs : list of Pair
        The pairs last shown (:class:`napari_xray.engine.explain.Pair`).
    pair_layers : dict
        ``{(pair key, "tutorial" | "engine" | "difference"): layer}``.
    stage_layers : dict
        ``{stage name: layer}`` of Canny's stages.
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        napari_viewer = unwrap(napari_viewer)
        self.viewer = napari_viewer
        self.pairs: list = []
        self._view = _ShownView(napari_viewer)
        self.stage_layers: dict = {}
        self._worker = None
        self._input_ref = None
        self._frame: int | None = None
        self._chosen = 0

        self._image = ComboBox(choices=self._image_choices, nullable=True,
                               tooltip="The image explained: its frame on screen")  # fmt: skip
        self._pair = QComboBox()
        self._pair.addItems([ALL_PAIRS, *PAIRS.values()])
        self._pair.setToolTip("The tutorial's mistake to show (or all four, one row each)")
        # The titles are long: the dock keeps its width, the list shows them whole.
        self._pair.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self._pair.setMinimumContentsLength(12)
        self._show = QPushButton("Show")
        self._show.setToolTip("Add the pair's layers for the frame on screen, in grid view; "
                              "click again to restore the view")  # fmt: skip
        self._show.clicked.connect(self.toggle)
        self._captions = QLabel("Choose a pair and press Show.")
        self._captions.setWordWrap(True)
        self._captions.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self._sigma = QDoubleSpinBox()
        self._sigma.setRange(0.01, 64.0)
        self._sigma.setDecimals(2)
        self._sigma.setSingleStep(0.25)
        self._sigma.setValue(2.0)
        self._sigma.setToolTip("σ of Canny's smoothing and of the transfer function plotted")
        self._sigma.valueChanged.connect(self._draw_transfer)
        self._stages = QPushButton("Add Canny's stages")
        self._stages.setToolTip("Smoothed frame, gradient magnitude, non-maximum suppression, "
                                "strong and weak edges, hysteresis: one layer each")
        self._stages.clicked.connect(self.add_canny_stages)
        self._status = QLabel()
        self._status.setWordWrap(True)
        self._figure = Figure(figsize=(3.5, 2.0))
        self._canvas = FigureCanvasQTAgg(self._figure)
        self._canvas.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self._canvas.setFixedHeight(170)

        form = QFormLayout()
        form.addRow("Image", self._image.native)
        row = QHBoxLayout()
        row.addWidget(self._pair, 1)
        row.addWidget(self._show)
        form.addRow("Pair", row)
        stages = QHBoxLayout()
        stages.addWidget(self._sigma)
        stages.addWidget(self._stages, 1)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addLayout(form)
        layout.addWidget(self._captions)
        layout.addSpacing(6)
        layout.addWidget(QLabel("<b>Canny, stage by stage</b> (σ)"))
        layout.addLayout(stages)
        layout.addWidget(self._canvas)
        layout.addWidget(self._status)
        layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        scroll.setMinimumHeight(MIN_DOCK_HEIGHT)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        for name in ("inserted", "removed"):
            getattr(napari_viewer.layers.events, name).connect(self._on_layers_changed)
        # Closing the dock puts the view back (nothing else could, once it is gone).
        self.destroyed.connect(self._view.put_back)
        self._on_layers_changed()
        self._draw_transfer()

    # ------------------------------------------------------------------ public API

    @property
    def image_layer(self) -> Layer | None:
        """The image explained."""
        return self._image.value

    @image_layer.setter
    def image_layer(self, layer: Layer) -> None:
        self._image.reset_choices()
        self._image.value = unwrap(layer)

    @property
    def pair_layers(self) -> dict:
        """``{(pair key, "tutorial" | "engine" | "difference"): layer}``."""
        return self._view.layers

    @property
    def showing(self) -> bool:
        """Whether the pairs are on screen (the view is saved, for Restore)."""
        return self._view.saved is not None

    @property
    def busy(self) -> bool:
        """Whether the pairs are still being computed."""
        return self._worker is not None

    @property
    def status(self) -> str:
        """The dock's status line."""
        return self._status.text()

    def choose_pair(self, key: str | None) -> None:
        """Show pair ``key`` of :data:`~napari_xray.engine.explain.PAIRS` (None: all four)."""
        self._pair.setCurrentIndex(0 if key is None else 1 + list(PAIRS).index(key))

    def toggle(self) -> None:
        """Show the chosen pair(s) for the frame on screen, or restore the view."""
        if self.showing:
            self.restore()
        else:
            self.show_pairs()

    def show_pairs(self) -> None:
        """Compute the chosen pair(s) for the frame on screen (in a worker) and show them."""
        from napari.qt.threading import create_worker

        from napari_xray.plugin.threads import start_worker

        layer = self.image_layer
        problem = input_problem(layer)
        if problem is not None or self._worker is not None:
            self._status.setText(problem or "Still computing the pairs…")
            return
        frame = displayed_frame(self.viewer, layer)
        self._input_ref, self._frame = weakref.ref(layer), frame
        self._chosen = self._pair.currentIndex()  # what was asked for, not what is chosen later
        self._status.setText("Computing the four pairs (the 3-D filter takes a moment)…")
        self._show.setEnabled(False)
        worker = create_worker(explain_pairs, layer.data, frame, _start_thread=False)
        worker.returned.connect(self._on_pairs)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        start_worker(worker)

    def restore(self) -> None:
        """Hide the pairs' layers and put back the grid, camera and visibility."""
        if not self.showing:
            return
        self._view.put_back()
        self._show.setText("Show")

    def add_canny_stages(self) -> list:
        """Canny's stages of the frame on screen as layers (:func:`canny_stages`), at the
        dock's σ and the default thresholds; a second call refills the same layers."""
        layer = self.image_layer
        problem = input_problem(layer)
        if problem is not None:
            self._status.setText(problem)
            return []
        frame = displayed_frame(self.viewer, layer)
        pixels = np.asarray(layer.data[frame] if frame is not None else layer.data)
        sigma = self._sigma.value()
        stages = canny_stages(pixels, sigma=sigma)
        added = []
        for name, data in stages.items():
            title = f"Canny σ={sigma:g} {CANNY_STAGES.index(name) + 1}: {name} · {layer.name}"
            added.append(self._put(self.stage_layers, name, data, title, layer))
        where = f" of frame {frame}" if frame is not None else ""
        self._status.setText(f"Canny's stages{where} at σ = {sigma:g}: "
                             f"{int(stages['hysteresis'].sum())} edge pixels.")  # fmt: skip
        return added

    # ------------------------------------------------------------------ internals

    def event(self, event) -> bool:  # noqa: D102 - Qt's
        from qtpy.QtCore import QEvent

        # napari closes a dock by taking this widget out of it (its parent becomes None):
        # the view goes back as Restore would put it.
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self._view.put_back()
            self._show.setText("Show")
        return super().event(event)

    def _image_choices(self, widget=None):
        return image_layer_choices(self.viewer, exclude=lambda layer: _is_own(layer) or (
            result_entry(layer) is not None))

    def _on_layers_changed(self, event=None) -> None:
        if not qt_alive(self):
            return
        reset_layer_choices(self._image)
        choices = self._image_choices()
        if self._image.value is None and choices:
            self._image.value = choices[0][1]

    def _put(self, store: dict, key, data: np.ndarray, name: str, source) -> Layer:
        """The layer ``store[key]`` holding ``data`` (made, or refilled and shown): a
        Labels layer for a bool stage, else an Image shown between its percentiles."""
        from napari.layers import Labels

        as_labels = data.dtype == bool
        if as_labels:
            data = data.astype(np.uint8)
        layer = store.get(key)
        if layer is not None and (not layer_alive(self.viewer, layer)
                                  or isinstance(layer, Labels) != as_labels):  # fmt: skip
            layer = None
        if layer is not None:
            layer.data = data
            layer.name = name
            layer.scale = tuple(source.scale)[-2:]
            layer.translate = tuple(source.translate)[-2:]
            layer.visible = True
        else:
            kwargs = {"name": name, "metadata": {"napari_xray_explain": str(key)},
                      "scale": tuple(source.scale)[-2:],
                      "translate": tuple(source.translate)[-2:]}  # fmt: skip
            layer = (self.viewer.add_labels if as_labels else self.viewer.add_image)(
                data, **kwargs)
            store[key] = layer
        if not as_labels:
            layer.contrast_limits = tuple(display_range(data).values())
        return layer

    def _on_pairs(self, pairs) -> None:
        if not qt_alive(self) or self.parent() is None:  # the dock was closed meanwhile
            return
        source = self._input_ref() if self._input_ref is not None else None
        if source is None or not layer_alive(self.viewer, source):
            self._status.setText("The image was removed before its pairs were ready.")
            return
        chosen = self._chosen
        shown = [p for p in pairs if p.tutorial is not None and (
            chosen == 0 or p.key == list(PAIRS)[chosen - 1])]
        if not shown:
            self._status.setText("This pair needs a stack of frames: " + pairs[2].caption[1])
            return
        self.pairs = shown
        self._view.save()
        for layer in self.viewer.layers:  # everything else, Canny's stages too, steps aside
            if layer.visible:
                layer.visible = False
        order = []
        for number, pair in enumerate(pairs, start=1):
            if pair not in shown:
                continue
            for part, data, label in zip(("tutorial", "engine", "difference"),
                                         (pair.tutorial, pair.engine, pair.difference),
                                         pair.labels, strict=True):  # fmt: skip
                layer = self._put(self.pair_layers, (pair.key, part), data,
                                  f"{number} {label}", source)  # fmt: skip
                if part == "difference":
                    limit = float(np.percentile(np.abs(data), DISPLAY_PERCENTILE)) or 1.0
                    layer.colormap = napari_colormap("RdBu_r")
                    layer.contrast_limits = (-limit, limit)
                layer.name_overlay.visible = True
                order.append(layer)
        # napari's grid fills its cells from the first layer of the list: three to a row.
        for position, layer in enumerate(order):
            self.viewer.layers.move(self.viewer.layers.index(layer), position)
        grid = grid_model(self.viewer)
        grid.shape = (len(shown), 3)
        grid.stride = 1
        grid.enabled = True
        self.viewer.reset_view()
        self._captions.setText("<br><br>".join(
            f"<b>{list(PAIRS).index(p.key) + 1}. {p.title}</b><br>{p.caption[0]}<br>"
            f"{p.caption[1]}" for p in shown))
        self._show.setText("Restore")
        where = f"frame {self._frame}" if self._frame is not None else "the image"
        self._status.setText(f"Shown for {where}; press Restore to go back.")

    def _on_error(self, error) -> None:
        if qt_alive(self):
            self._status.setText(f"Could not explain this image: {error}")

    def _on_finished(self) -> None:
        self._worker = None
        if qt_alive(self):
            self._show.setEnabled(True)

    def _draw_transfer(self, *args) -> None:
        sigma = self._sigma.value()
        self._figure.clear()
        axis = self._figure.add_subplot(1, 1, 1)
        axis.plot(FREQUENCIES, gaussian_transfer(sigma, FREQUENCIES), label=f"σ = {sigma:g}")
        axis.plot(FREQUENCIES, gaussian_transfer(TUTORIAL_SIGMA, FREQUENCIES), "--",
                  label=f"tutorial's σ = {TUTORIAL_SIGMA}")  # fmt: skip
        axis.set_xlabel("frequency (cycles per pixel)", fontsize=7)
        axis.set_ylabel("Gaussian's gain", fontsize=7)
        axis.tick_params(labelsize=6)
        axis.set_ylim(0, 1.05)
        axis.legend(fontsize=6, loc="upper right")
        self._figure.tight_layout()
        self._canvas.draw_idle()
