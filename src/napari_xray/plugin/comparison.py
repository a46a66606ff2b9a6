"""The compare-all view of one viewer: the tutorial's panels in napari's grid, and back.

:class:`Comparison` shows :data:`napari_xray.engine.operations.COMPARISON` of
one image layer in napari's grid view, one layer per panel named by its title
(the original is the input layer itself; Sobel gray and hot are two layers
sharing one array), every other layer hidden. :meth:`Comparison.hide` restores
the grid, the camera, the layers' visibility and their name overlays.

Its panel layers are made once and kept: hiding them hides them (napari's
removal of a layer costs ≈0.5 s), and the next comparison, of any layer,
points them at its results and shows them again. Shown gradually, the panels
arrive one per event-loop turn, each once the canvas has drawn the one before,
under napari's progress bar and a busy cursor. Python's automatic garbage
collection pauses while they arrive (a full collection of napari's objects costs
as much as adding a layer, and the panels' allocations would start one in the
middle of a step); after the last panel, what it held back runs in turns of
its own.
"""

from __future__ import annotations

import gc
import math
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from psygnal import Signal

from napari_xray.engine.operations import COMPARISON, ComparisonPanel, get_operation
from napari_xray.plugin.canvas import camera_model, canvas_widget, draw_emitter, grid_model
from napari_xray.plugin.layers import layer_alive, same_layer, unwrap
from napari_xray.plugin.outputs import SyncedOutputs
from napari_xray.plugin.result_layers import OutputSpec

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["Comparison", "SavedView", "comparison_specs", "preload_panel_imports"]

_GRID_FIELDS = ("stride", "shape", "spacing", "enabled")
#: Longest wait (ms) for the canvas to draw a panel before the next one comes anyway.
_DRAW_WAIT_MS = 100
#: Imported by napari when the first panels are made (pandas for Labels layers) or by
#: napari-xray for matplotlib-only colormaps; loaded in the background beforehand.
_PANEL_IMPORTS = ("pandas", "matplotlib.cm")


def preload_panel_imports() -> None:
    """Import, in the background, what the first panels need (napari would, in the GUI thread)."""
    from napari_xray.plugin.threads import import_in_background

    import_in_background(*_PANEL_IMPORTS)


def grid_shape(count: int) -> tuple[int, int]:
    """The (rows, columns) napari's automatic grid gives ``count`` viewboxes."""
    columns = max(1, math.ceil(math.sqrt(count)))
    return max(1, math.ceil(count / columns)), columns


def comparison_specs(panels: Sequence[ComparisonPanel] = COMPARISON):
    """The outputs that show ``panels`` and where each panel finds its layer.

    Panels with the same operation and parameters (Sobel gray and hot) share
    one output with one layer per colormap.

    Returns
    -------
    specs : list of OutputSpec
    slots : list of (spec index, layer index) or None
        One entry per panel, in panel order; ``None`` is the original (the input layer).
    """
    specs: list[OutputSpec] = []
    groups: dict[tuple, int] = {}
    colormaps: list[list[str]] = []
    names: list[list[str]] = []
    slots: list[tuple[int, int] | None] = []
    for panel in panels:
        if panel.key is None:
            slots.append(None)
            continue
        group = panel.signature
        if group not in groups:
            groups[group] = len(specs)
            specs.append(OutputSpec(get_operation(panel.key), panel.resolved_params()))
            colormaps.append([])
            names.append([])
        index = groups[group]
        slots.append((index, len(colormaps[index])))
        colormaps[index].append(panel.colormap)
        names[index].append(panel.title)
    specs = [
        OutputSpec(spec.operation, spec.params, tuple(maps), tuple(titles))
        for spec, maps, titles in zip(specs, colormaps, names, strict=True)
    ]
    return specs, slots


class SavedView:
    """What a comparison changes in a viewer, recorded so that it can be put back."""

    def __init__(self, viewer: napari.Viewer, skip) -> None:
        grid = grid_model(viewer)
        self.grid = {name: getattr(grid, name) for name in _GRID_FIELDS if hasattr(grid, name)}
        camera = camera_model(viewer)
        self.camera = (tuple(camera.center), camera.zoom)
        layers = [layer for layer in viewer.layers if not skip(layer)]
        self.visibility = [(layer, layer.visible) for layer in layers]
        self.name_overlays = [(layer, layer.name_overlay.visible) for layer in layers]

    def put_back(self, viewer: napari.Viewer) -> None:
        """Grid, visibility, name overlays and camera as recorded (for layers still there)."""
        grid = grid_model(viewer)
        grid.enabled = False  # first: with the grid on, every change re-lays out all viewboxes
        for name, value in self.grid.items():
            setattr(grid, name, value)
        for layer, visible in self.visibility:
            if layer_alive(viewer, layer) and layer.visible != visible:
                layer.visible = visible
        for layer, visible in self.name_overlays:
            if layer_alive(viewer, layer) and layer.name_overlay.visible != visible:
                layer.name_overlay.visible = visible
        center, zoom = self.camera
        camera = camera_model(viewer)
        camera.center = center
        camera.zoom = zoom


class Comparison:
    """The compare-all view of one viewer: its panel layers, whether it is on, what it changed.

    Parameters
    ----------
    viewer : napari.Viewer
        Held weakly.

    Signals
    -------
    switched(bool)
        The comparison went on (True) or off (False; also when its input layer
        is removed from the viewer).
    panel_shown(int, object)
        Panel ``index`` (of :data:`~napari_xray.engine.operations.COMPARISON`) is
        on screen, in that layer.
    shown()
        Every panel is on screen.
    """

    switched = Signal(bool)
    panel_shown = Signal(int, object)
    shown = Signal()

    def __init__(self, viewer: napari.Viewer) -> None:
        viewer = unwrap(viewer)
        self._viewer_ref = weakref.ref(viewer)
        self.specs, self.slots = comparison_specs()
        # The panel layers are kept for reuse, also when the input goes mid-computation.
        self.outputs = SyncedOutputs(
            viewer, description="napari-xray: compare all", remove_orphans=False
        )
        self.input_layer: Layer | None = None
        #: True from :meth:`show` until :meth:`hide`.
        self.on = False
        self._saved: SavedView | None = None
        self._steps: Iterator | None = None
        self._timer = None
        self._awaiting_draw = False
        self._stepping = False
        self._hide_after_step = False
        self._progress = None
        self._progress_due = 0
        self._busy_cursor = False
        self._collection_paused = False
        self._old_objects = 0
        viewer.layers.events.removed.connect(self._on_layer_removed)
        preload_panel_imports()

    # ------------------------------------------------------------------ state

    @property
    def viewer(self) -> napari.Viewer | None:
        """The viewer, or ``None`` once it has been garbage-collected."""
        return self._viewer_ref()

    @property
    def arriving(self) -> bool:
        """True while panels of a gradual :meth:`show` are still to come."""
        return self._steps is not None

    @property
    def busy(self) -> bool:
        """True while panels are arriving or frames are still being computed."""
        return self.arriving or self.outputs.busy

    def owns(self, layer: Layer) -> bool:
        """True when ``layer`` is one of the panel layers (shown or hidden)."""
        return self.outputs.owns(layer)

    def panel_layer(self, index: int) -> Layer | None:
        """The layer of panel ``index`` (the input for the original), ``None`` if it has none."""
        slot = self.slots[index]
        if slot is None:
            return self.input_layer if layer_alive(self.viewer, self.input_layer) else None
        return self.outputs.layer_at(*slot)

    def panels(self) -> list[Layer | None]:
        """The layer of every panel, in panel order (the first is the input)."""
        return [self.panel_layer(index) for index in range(len(self.slots))]

    # ------------------------------------------------------------------ on and off

    def show(self, layer: Layer, *, wait: bool = True, gradual: bool = False) -> None:
        """Show the comparison of ``layer`` (or update it when it is already shown).

        Parameters
        ----------
        layer : napari.layers.Image
        wait : bool
            Compute every frame before returning; otherwise the frame on screen
            of every panel is computed at once and the rest follows from a worker.
        gradual : bool
            Return once every panel's frame on screen is computed; the grid (with
            the input) and the panels then arrive one per event-loop turn
            (:attr:`arriving`, :attr:`panel_shown`, :attr:`shown`).

        Raises
        ------
        ValueError
            ``layer`` cannot be filtered (the message says why); nothing changed.
        """
        layer = unwrap(layer)
        self._stop_steps()
        if self.on and not same_layer(layer, self.input_layer):
            self.hide()
        # Computes every panel's frame on screen first: a ValueError leaves all as it was.
        # The other frames wait for the panels: a worker would slow their arrival.
        self.outputs.update(
            layer, self.specs, wait=wait, keep_layers=True, create_layers=False, hold_rest=True
        )
        viewer = self.viewer
        switched_on = not self.on
        if switched_on:
            self._saved = SavedView(viewer, skip=self.owns)
        self.input_layer = layer
        self.on = True
        if switched_on:
            self.switched.emit(True)
        steps = self._show_steps()
        if gradual:
            self._start_steps(steps)
        else:
            for _ in steps:
                pass

    def hide(self) -> bool:
        """Hide the panels and put back the grid, camera, visibility and name overlays.

        The panel layers stay (hidden) for the next :meth:`show`. Returns False when
        the comparison was not on.
        """
        if not self.on:
            return False
        if self._stepping:  # asked from inside a step (napari's progress bar processes events)
            self._hide_after_step = True
            return True
        self._stop_steps()
        if self.outputs.busy:
            self.outputs.cancel()
        self.on = False
        viewer = self.viewer
        if viewer is None:
            return True
        panels = [panel for panel in self.panels()[1:] if panel is not None]
        for panel in panels:  # name overlays off before the grid: cheaper to redraw
            panel.name_overlay.visible = False
        grid = grid_model(viewer)
        grid.enabled = False
        for panel in panels:
            panel.visible = False
        if self._saved is not None:
            self._saved.put_back(viewer)
            self._saved = None
        self.switched.emit(False)
        return True

    def close(self) -> None:
        """Stop all work and stop following the viewer; the layers stay as they are."""
        self._stop_steps()
        self.outputs.close()
        viewer = self.viewer
        if viewer is not None:
            try:
                viewer.layers.events.removed.disconnect(self._on_layer_removed)
            except (RuntimeError, ValueError, TypeError):  # pragma: no cover - already gone
                pass

    def _on_layer_removed(self, event) -> None:
        if self.on and same_layer(event.value, self.input_layer):
            # After napari's own removal handlers: the view without its input is put back.
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, self.hide)

    # ------------------------------------------------------------------ the steps of show

    def _show_steps(self) -> Iterator[None]:
        """Arrange the grid with the input, then each panel in turn; yields between steps.

        A panel's layer is made (hidden), shown, and given its name overlay in
        three steps: each is drawn on its own. Holds no reference to the viewer
        across a ``yield`` (a closed viewer can go).
        """
        self._arrange_input(self.viewer)
        yield
        for index, slot in enumerate(self.slots):
            if slot is None:
                continue
            panel = self.outputs.layer_at(*slot)
            if panel is None:
                below = self._panel_below(index)
                at = self.viewer.layers.index(below) + 1 if below is not None else None
                panel = self.outputs.add_layer(*slot, at=at, visible=False)
                if panel is None:  # the input is gone
                    return
                yield
            if not panel.visible:
                panel.visible = True
                yield
            if not panel.name_overlay.visible:
                panel.name_overlay.visible = True
            self.panel_shown.emit(index, panel)
            self._progress_due += 1
            yield
        yield from self._collection_steps()
        self.viewer.reset_view()
        self.outputs.settle()  # now the other frames
        self.shown.emit()

    def _panel_below(self, index: int) -> Layer | None:
        """The layer of the nearest earlier panel that has one (the input at least)."""
        for earlier in range(index - 1, -1, -1):
            layer = self.panel_layer(earlier)
            if layer is not None:
                return layer
        return None

    def _arrange_input(self, viewer: napari.Viewer) -> None:
        """Only the input visible, the panels in order above it, names on, the grid on."""
        layer = self.input_layer
        panels = [panel for panel in self.panels()[1:] if panel is not None]
        members = [layer, *panels]
        for other in viewer.layers:
            if other.visible and not any(other is member for member in members):
                other.visible = False
        # The grid fills cells in layer-list order: the input, then the panels in order.
        indices = [viewer.layers.index(member) for member in members]
        if indices != sorted(indices):
            for panel in panels:
                viewer.layers.move(viewer.layers.index(panel), len(viewer.layers))
        layer.visible = True
        layer.name_overlay.visible = True
        grid = grid_model(viewer)
        # The final shape from the start: panels that arrive fill cells without re-laying
        # out the others.
        shape = grid_shape(len(self.slots))
        if tuple(grid.shape) != shape:
            grid.shape = shape
        if grid.stride != 1:
            grid.stride = 1
        grid.enabled = True
        viewer.reset_view()

    # ------------------------------------------------------------------ one step per turn

    def _start_steps(self, steps: Iterator[None]) -> None:
        from napari.utils import progress
        from qtpy.QtCore import Qt, QTimer
        from qtpy.QtGui import QCursor
        from qtpy.QtWidgets import QApplication

        viewer = self.viewer
        self._steps = steps
        self._stepping = True  # napari's progress bar processes events: a Restore waits
        if gc.isenabled():
            gc.disable()
            self._collection_paused = True
            self._old_objects = len(gc.get_objects(generation=2))
        try:
            if QApplication.instance() is not None:
                QApplication.setOverrideCursor(QCursor(Qt.CursorShape.BusyCursor))
                self._busy_cursor = True
            native = canvas_widget(viewer)
            self._timer = QTimer(native) if native is not None else QTimer()
            self._timer.setSingleShot(True)
            self._timer.timeout.connect(self._next_step)
            if native is not None:
                native.destroyed.connect(self._on_canvas_destroyed)
            draws = draw_emitter(viewer)
            if draws is not None:
                draws.connect(self._on_canvas_drawn, position="last")
            self._progress = progress(
                total=sum(slot is not None for slot in self.slots),
                desc="napari-xray: compare all",
            )
        except BaseException:
            self._stepping = False
            self._stop_steps()  # cursor, progress and garbage collection back as they were
            raise
        finally:
            self._stepping = False
        if self._hide_after_step:
            self._hide_after_step = False
            self.hide()
            return
        self._timer.start(0)  # the grid in the next turn: this one has computed the frames

    def _next_step(self) -> None:
        steps = self._steps
        if steps is None:
            return
        if self._stepping:  # napari's progress bar processes events inside a step
            self._timer.start(0)
            return
        self._stepping = True
        self._awaiting_draw = False
        try:
            if self._progress_due and self._progress is not None:
                # napari's progress bar processes events: here, with the last panel drawn
                self._progress.update(self._progress_due)
            self._progress_due = 0
            next(steps)
        except StopIteration:
            self._stepping = False
            self._stop_steps()
            return
        except Exception:
            self._stepping = False
            self._stop_steps()
            raise
        self._stepping = False
        if self._hide_after_step:
            self._hide_after_step = False
            self.hide()
            return
        if self._timer is not None and self._steps is not None:
            self._awaiting_draw = True
            self._timer.start(_DRAW_WAIT_MS)

    def _on_canvas_drawn(self, event=None) -> None:
        if self._awaiting_draw and self._timer is not None:
            self._awaiting_draw = False
            self._timer.start(0)  # the next panel once this paint is over

    def _on_canvas_destroyed(self, *_args) -> None:
        self._timer = None
        self._stop_steps()

    def _resume_collection(self) -> None:
        """Switch automatic garbage collection back on if a gradual show paused it."""
        if self._collection_paused:
            self._collection_paused = False
            gc.enable()

    def _collection_steps(self) -> Iterator[None]:
        """After a gradual show, collection back on in turns of their own: the young
        objects first, then a full collection when the show has made Python due one
        (its old generation grew by a quarter, Python's own rule)."""
        if not self._collection_paused:
            return
        self._resume_collection()
        gc.collect(1)
        yield
        if len(gc.get_objects(generation=2)) > 1.25 * self._old_objects:
            gc.collect()
            yield

    def _stop_steps(self) -> None:
        """End a gradual show: no more steps, progress closed, cursor back, collection on."""
        self._resume_collection()
        steps, self._steps = self._steps, None
        self._awaiting_draw = False
        if steps is not None and not self._stepping:
            steps.close()
        timer, self._timer = self._timer, None
        if timer is not None:
            try:
                timer.stop()
                timer.deleteLater()
            except RuntimeError:  # pragma: no cover - deleted with the window
                pass
        draws = draw_emitter(self.viewer) if self.viewer is not None else None
        if draws is not None:
            try:
                draws.disconnect(self._on_canvas_drawn)
            except (RuntimeError, ValueError, TypeError):  # pragma: no cover
                pass
        progress_bar, self._progress = self._progress, None
        if progress_bar is not None:
            progress_bar.close()
        if self._busy_cursor:
            from qtpy.QtWidgets import QApplication

            self._busy_cursor = False
            QApplication.restoreOverrideCursor()
