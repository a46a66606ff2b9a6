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

__all__ = ["ViewerHub", "viewer_hub"]


class ViewerHub:
    """Shared state of one viewer: published thresholds, the comparison, console outputs.

    Signals
    -------
    threshold_changed(str, str, float)
        An operation widget moved an intensity parameter: operation key,
        parameter name, value.
    comparison_changed(bool)
        The compare-all view was switched on (True) or restored (False).
    outputs_completed(list)
        Output layers whose every frame has just been computed.
    """

    threshold_changed = Signal(str, str, float)
    comparison_changed = Signal(bool)
    outputs_completed = Signal(object)

    def __init__(self) -> None:
        #: The last published value of each intensity parameter, by (operation key, name).
        self.thresholds: dict[tuple[str, str], float] = {}
        self.comparison: Any = None  # napari_xray.plugin.console.Comparison
        #: Outputs made by add_filter, by (id(input layer), operation key).
        self.console: dict[tuple[int, str], Any] = {}

    def publish(self, operation: str, parameter: str, value: float | None) -> None:
        """Record and announce the value of ``operation``'s intensity ``parameter``.

        ``None`` (an optional parameter on auto) is ignored.
        """
        if value is None:
            return
        self.thresholds[(operation, parameter)] = float(value)
        self.threshold_changed.emit(operation, parameter, float(value))


_HUBS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def viewer_hub(viewer: napari.Viewer) -> ViewerHub:
    """The :class:`ViewerHub` of ``viewer`` (created on first use; a proxy finds its viewer's)."""
    from napari_xray.plugin.layers import unwrap

    viewer = unwrap(viewer)
    hub = _HUBS.get(viewer)
    if hub is None:
        hub = _HUBS[viewer] = ViewerHub()
        _follow_renames(viewer)
    return hub


def _follow_renames(viewer: napari.Viewer) -> None:
    """Keep the results' ``input_layer`` (a layer name) true when their input is renamed."""
    from napari_xray.plugin.layers import METADATA_KEY, unwrap

    names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    viewer_ref = weakref.ref(viewer)

    def renamed(event) -> None:
        layer, owner = unwrap(event.source), viewer_ref()
        old, new = names.get(layer), layer.name
        names[layer] = new
        if owner is None or old is None or old == new:
            return
        for other in owner.layers:
            entry = other.metadata.get(METADATA_KEY) if isinstance(other.metadata, dict) else None
            if isinstance(entry, dict) and entry.get("input_layer") == old and other is not layer:
                entry["input_layer"] = new

    def watch(layer) -> None:
        layer = unwrap(layer)
        if layer not in names:
            names[layer] = layer.name
            layer.events.name.connect(renamed)

    for layer in getattr(viewer, "layers", ()):
        watch(layer)
    if hasattr(viewer, "layers"):
        viewer.layers.events.inserted.connect(lambda event: watch(event.value))
