"""When the parameters have rested: :class:`RestClock` calls back once no new change has
come for :data:`STACK_DELAY_MS`, counted from when the canvas has drawn the last one,
and never while a mouse button is held (a slider being dragged).

While a slider is dragged only the frame on screen is recomputed; what waits for
rest (renaming the output layer, which repaints the layer list and every layer
picker, and computing the other frames of a stack) then happens once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from napari_xray.plugin.canvas import draw_emitter

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["STACK_DELAY_MS", "RestClock"]

#: Pause (ms) after a change, counted from when the canvas has drawn its new frame,
#: before the parameters count as rested. Longer than Qt takes to compose the window
#: after a draw (≈40 ms under Xvfb).
STACK_DELAY_MS = 80


def _mouse_button_held() -> bool:
    """True while a mouse button is down in the application (e.g. a slider being dragged)."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    return QApplication.instance() is not None and (
        QApplication.mouseButtons() != Qt.MouseButton.NoButton
    )


class RestClock:
    """Calls ``callback()`` once the change last announced with :meth:`start` has rested.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose canvas draws restart the clock.
    callback : callable
        Called without arguments, in the GUI thread.
    """

    def __init__(self, viewer: napari.Viewer, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._debounced = None
        self._pending = False
        self._drawn = False
        self._draws = draw_emitter(viewer)
        if self._draws is not None:  # vispy holds bound methods weakly
            self._draws.connect(self._on_canvas_drawn, position="last")

    @property
    def pending(self) -> bool:
        """True while a change waits for rest."""
        return self._pending

    def start(self, *, run: bool = True) -> None:
        """A change was shown: (re)start the clock; with ``run=False`` it waits for :meth:`stop`
        and a call of the callback by its owner instead."""
        self._pending = True
        self._drawn = not run
        if run:
            self._restart()

    def stop(self) -> None:
        """Forget the waiting change."""
        self._pending = False
        debounced = self._debounced
        if debounced is not None:
            try:
                debounced.cancel()
            except RuntimeError:  # pragma: no cover - Qt already deleted it (shutdown)
                pass

    def close(self) -> None:
        """Stop, and stop following the canvas."""
        self.stop()
        self._debounced = None
        if self._draws is not None:
            try:
                self._draws.disconnect(self._on_canvas_drawn)
            except (RuntimeError, ValueError, TypeError):  # pragma: no cover - already gone
                pass

    def _restart(self) -> None:
        if self._debounced is None:
            from superqt.utils import qdebounced

            self._debounced = qdebounced(self._on_timeout, timeout=STACK_DELAY_MS)
        self._debounced()

    def _restart_if_pending(self) -> None:
        if self._pending:
            self._restart()

    def _on_canvas_drawn(self, event=None) -> None:
        if not self._pending or self._drawn:
            return
        self._drawn = True
        self._restart()  # the new frame is drawn: the clock restarts
        from qtpy.QtCore import QTimer

        # ... and again once Qt has composed the window (after this paint event).
        QTimer.singleShot(0, self._restart_if_pending)

    def _on_timeout(self) -> None:
        if not self._pending:
            return
        if _mouse_button_held():
            self._restart()  # a slider is still being dragged: no rest yet
            return
        self._pending = False
        self._callback()
