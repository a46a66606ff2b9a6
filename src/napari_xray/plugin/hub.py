"""Per-viewer state shared by the napari-xray widgets and console functions.

One :class:`ViewerHub` per viewer, kept in a weak-keyed registry: it never holds
the viewer itself, so a closed viewer (and its Qt window) can be collected.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from psygnal import Signal

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["MASK_THRESHOLD", "ViewerHub", "viewer_hub"]

#: Name under which the mask widget publishes its threshold (``"<operation>.<parameter>"``).
MASK_THRESHOLD = "mask.threshold"


class ViewerHub:
    """Shared state of one viewer: published thresholds, the comparison, console outputs.

    Signals
    -------
    threshold_changed(str, float)
        An operation widget moved an intensity parameter (name ``"<op>.<param>"``).
    comparison_changed(bool)
        The compare-all view was switched on (True) or restored (False).
    outputs_completed(list)
        Output layers whose every frame has just been computed.
    """

    threshold_changed = Signal(str, float)
    comparison_changed = Signal(bool)
    outputs_completed = Signal(object)

    def __init__(self) -> None:
        self.thresholds: dict[str, float] = {}
        self.comparison: Any = None  # napari_xray.plugin.widgets.compare._Comparison
        self.console: dict[tuple[int, str], Any] = {}  # (id(input layer), key) -> LiveFilter

    def publish(self, name: str, value: float | None) -> None:
        """Record and announce an intensity parameter's value (``None`` values are ignored)."""
        if value is None:
            return
        self.thresholds[name] = float(value)
        self.threshold_changed.emit(name, float(value))


_HUBS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def viewer_hub(viewer: napari.Viewer) -> ViewerHub:
    """The :class:`ViewerHub` of ``viewer`` (created on first use)."""
    hub = _HUBS.get(viewer)
    if hub is None:
        hub = _HUBS[viewer] = ViewerHub()
    return hub
