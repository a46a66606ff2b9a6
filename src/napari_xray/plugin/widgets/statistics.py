"""Statistics dock: the selected layer's figures for the frame on screen and the whole
stack, and a 256-bin histogram of the frame with a threshold line.

Figures come from :func:`napari_xray.engine.statistics.image_statistics` and
:func:`~napari_xray.engine.statistics.intensity_histogram`. The frame's figures follow
the frame slider; the stack's are computed once per layer data (in a worker when
the stack is large) and cached. The line marks
:data:`~napari_xray.engine.operations.HISTOGRAM_THRESHOLD` (the mask threshold) as
its widget publishes it through the viewer's hub, or as
:meth:`StatisticsWidget.set_threshold` sets it.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QFrame,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qdebounced

from napari_xray.engine.operations import HISTOGRAM_THRESHOLD
from napari_xray.engine.statistics import image_statistics, intensity_histogram
from napari_xray.plugin.hub import viewer_hub
from napari_xray.plugin.layers import (
    data_key,
    displayed_plane,
    layer_kind,
    qt_alive,
    referenced_layer,
    same_layer,
    still_computing,
    unwrap,
)
from napari_xray.plugin.widgets.form import MIN_DOCK_HEIGHT

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["StatisticsWidget"]

ROWS = ("dtype", "min", "max", "mean", "median", "std")
#: Stacks with more pixels than this get their statistics in a worker thread.
_SYNC_PIXELS = 2_000_000
#: The figures are recomputed this long (ms) after the last change of frame or data.
_DEBOUNCE_MS = 40
_MARKED = (HISTOGRAM_THRESHOLD.operation.key, HISTOGRAM_THRESHOLD.parameter.name)


def _format(name: str, value: Any) -> str:
    if value is None:
        return "…"
    if name == "dtype":
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value)}"
    return f"{float(value):.6g}"


def _stack_statistics(data) -> dict | None:
    """Statistics of a whole stack (worker body); None when they are undefined (NaN/inf)."""
    try:
        return image_statistics(np.asarray(data))
    except ValueError:
        return None


class StatisticsWidget(QWidget):
    """Frame and stack statistics of the selected layer, with a histogram.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Attributes
    ----------
    frame_statistics, stack_statistics : dict or None
        The figures on display (``stack_statistics`` is ``None`` while computing).
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        # napari hands dock widgets a proxy of the viewer, and every layer reached through
        # it is a new proxy: keep (weak) references to the layers themselves.
        napari_viewer = unwrap(napari_viewer)
        self.viewer = napari_viewer
        self.frame_statistics: dict | None = None
        self.stack_statistics: dict | None = None
        self._layer_ref = None
        self._cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._worker = None
        hub = viewer_hub(napari_viewer)
        self._threshold = hub.thresholds.get(_MARKED, HISTOGRAM_THRESHOLD.default)

        self._title = QLabel("Select an image layer.")
        self._title.setWordWrap(True)
        self._table = QTableWidget(len(ROWS), 2)
        self._table.setHorizontalHeaderLabels(["Frame", "Stack"])
        self._table.setVerticalHeaderLabels(list(ROWS))
        self._table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self._table.setEditTriggers(QTableWidget.NoEditTriggers)
        self._table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self._table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        rows = self._table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 8)
        height = (
            self._table.horizontalHeader().sizeHint().height()
            + len(ROWS) * rows.defaultSectionSize()
            + 2 * self._table.frameWidth()
            + 2
        )
        self._table.setFixedHeight(height)
        self._figure = Figure(figsize=(4, 2.6), tight_layout=True)
        self._axes = self._figure.add_subplot(1, 1, 1)
        self._canvas = FigureCanvasQTAgg(self._figure)
        self._canvas.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self._canvas.setMinimumHeight(180)
        # The figures scroll inside the dock rather than growing the window.
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addWidget(self._title)
        layout.addWidget(self._table)
        layout.addWidget(self._canvas)
        self._scroll = QScrollArea(self)
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self._scroll.setWidget(content)
        self._scroll.setMinimumHeight(MIN_DOCK_HEIGHT)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self._scroll)

        self._refresh_debounced = qdebounced(self.refresh, timeout=_DEBOUNCE_MS, parent=self)

        napari_viewer.layers.selection.events.active.connect(self._on_active)
        napari_viewer.dims.events.current_step.connect(self._schedule)
        hub.threshold_changed.connect(self._on_threshold_published)
        hub.outputs_completed.connect(self._on_outputs_completed)
        self._on_active()

    # ------------------------------------------------------------------ public API

    @property
    def layer(self) -> Layer | None:
        """The layer whose figures are shown (the viewer's selected layer)."""
        return referenced_layer(self.viewer, self._layer_ref)

    @property
    def threshold(self) -> float:
        """The threshold drawn on the histogram (the mask threshold)."""
        return self._threshold

    def set_threshold(self, value: float) -> None:
        """Draw the threshold line at ``value`` on the histogram."""
        self._threshold = float(value)
        self._draw_histogram()

    def refresh(self) -> None:
        """Recompute the frame's figures and histogram; fetch the stack's (cached)."""
        if not qt_alive(self):
            return
        from napari.layers import Image, Labels

        layer = self.layer
        if not isinstance(layer, (Image, Labels)):
            self.frame_statistics = self.stack_statistics = None
            self._title.setText(
                "Select an image or labels layer to see its statistics."
                if layer is None
                else f"'{layer.name}' is a {layer_kind(layer)} layer; select an image "
                "or labels layer."
            )
            self._fill()
            self._draw_histogram(None)
            return
        if getattr(layer, "multiscale", False):
            self._title.setText(f"'{layer.name}' is multiscale; statistics need one resolution.")
            return
        plane = displayed_plane(self.viewer, layer)
        frame = np.asarray(layer.data[plane] if plane else layer.data)
        try:
            self.frame_statistics = image_statistics(frame)
        except ValueError as error:  # NaN/inf or an empty frame: say so, keep running
            self.frame_statistics = self.stack_statistics = None
            self._title.setText(f"'{layer.name}': {error}")
            self._fill()
            self._draw_histogram(None)
            return
        where = ", ".join(str(i + 1) for i in plane)
        total = " × ".join(str(n) for n in layer.data.shape[: len(plane)])
        self._title.setText(
            f"<b>{layer.name}</b>" + (f" — frame {where} of {total}" if plane else "")
        )
        self.stack_statistics = self._stack_for(layer)
        self._fill()
        self._draw_histogram(frame)

    # ------------------------------------------------------------------ internals

    def _schedule(self, event=None) -> None:
        if qt_alive(self):
            self._refresh_debounced()

    def _on_active(self, event=None) -> None:
        if not qt_alive(self):
            return
        previous = self._layer_ref() if self._layer_ref is not None else None
        if previous is not None:
            for emitter in (previous.events.set_data, previous.events.data):
                try:
                    emitter.disconnect(self._schedule)
                except (RuntimeError, ValueError, TypeError):  # pragma: no cover
                    pass
        layer = unwrap(self.viewer.layers.selection.active)
        self._layer_ref = weakref.ref(layer) if layer is not None else None
        if layer is not None:
            layer.events.set_data.connect(self._schedule)
            layer.events.data.connect(self._schedule)
        self.refresh()

    def _on_threshold_published(self, operation: str, parameter: str, value: float) -> None:
        if (operation, parameter) == _MARKED and qt_alive(self):
            self.set_threshold(value)

    def _on_outputs_completed(self, layers) -> None:
        layer = self.layer
        if layer is not None and any(same_layer(layer, done) for done in layers) and qt_alive(self):
            self._schedule()

    def _stack_for(self, layer) -> dict | None:
        if still_computing(layer):
            return None  # frames still being computed; figures follow on completion
        key = data_key(layer)
        cached = self._cache.get(layer)
        if cached is not None and cached[0] == key:
            return cached[1]
        data = layer.data
        if not isinstance(data, np.ndarray):
            return None  # lazy (Dask/Zarr) data: only the frame on screen is read
        if int(np.prod(data.shape)) <= _SYNC_PIXELS:
            stats = _stack_statistics(data)
            self._cache[layer] = (key, stats)
            return stats
        self._start_worker(layer, key)
        return None

    def _start_worker(self, layer, key) -> None:
        from napari.qt.threading import create_worker

        from napari_xray.plugin.threads import start_worker

        if self._worker is not None:
            self._worker.quit()
        layer_ref = weakref.ref(layer)
        worker = create_worker(_stack_statistics, layer.data, _start_thread=False)
        self_ref = weakref.ref(self)

        def _store(stats, layer_ref=layer_ref, key=key) -> None:
            owner, target = self_ref(), layer_ref()
            if owner is None or target is None or not qt_alive(owner):
                return
            if data_key(target) != key:
                return  # the data changed meanwhile; a new request is on its way
            owner._cache[target] = (key, stats)
            if owner.layer is target:
                owner.stack_statistics = stats
                owner._fill()

        worker.returned.connect(_store)
        self._worker = worker
        start_worker(worker)

    def _fill(self) -> None:
        for column, stats in enumerate((self.frame_statistics, self.stack_statistics)):
            for row, name in enumerate(ROWS):
                text = "" if self.frame_statistics is None else _format(
                    name, None if stats is None else stats.get(name)
                )
                self._table.setItem(row, column, QTableWidgetItem(text))

    def _draw_histogram(self, frame=...) -> None:
        axes = self._axes
        if frame is ...:  # only the threshold moved: redraw the line
            for line in list(axes.lines):
                line.remove()
        else:
            axes.clear()
            if frame is not None and frame.size:
                counts, edges = intensity_histogram(frame, bins=256)
                axes.stairs(counts, edges, fill=True, color="0.35")
                axes.set_xlabel("intensity")
                axes.set_ylabel("pixels")
                axes.set_title("frame histogram (256 bins)", fontsize=9)
        axes.axvline(self._threshold, color="tab:red", linewidth=1.2,
                     label=f"{HISTOGRAM_THRESHOLD.label} {self._threshold:g}")
        if axes.has_data():
            axes.legend(loc="upper left", fontsize=8, frameon=False)
        self._canvas.draw_idle()
