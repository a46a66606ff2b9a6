"""What the napari console (or a script) calls: :func:`add_filter`, :func:`compare_all`,
:func:`restore_view`; the X-ray widgets' buttons call the same functions.

``napari_xray.add_filter(viewer, layer, "sobel", normalize=False)`` shows one
operation's result as a layer. :func:`compare_all` shows the tutorial's
comparison (:data:`napari_xray.engine.operations.COMPARISON`) in napari's grid
view, one layer per panel named by its title, with every other layer hidden;
:func:`restore_view` hides those layers again (they are reused by the next
comparison) and restores the grid, the camera, the layers' visibility and their
name overlays. :func:`start_comparison` is what the "Compare all" button runs:
the panels arrive one by one and the window stays responsive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from napari_xray.engine.operations import get_operation
from napari_xray.plugin.comparison import Comparison, comparison_specs
from napari_xray.plugin.hub import viewer_hub
from napari_xray.plugin.layers import (
    image_layer_choices,
    input_problem,
    napari_colormap,
    unwrap,
)
from napari_xray.plugin.outputs import SyncedOutputs
from napari_xray.plugin.result_layers import OutputSpec

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = [
    "Comparison",
    "add_filter",
    "compare_all",
    "comparison_of",
    "comparison_specs",
    "is_comparing",
    "restore_view",
    "start_comparison",
]


# --------------------------------------------------------------------------- one operation


def add_filter(
    viewer: napari.Viewer,
    layer: Layer | None,
    key: str,
    *,
    new_layer: bool = False,
    wait: bool = True,
    colormap: str | None = None,
    **params: Any,
) -> Layer:
    """Filter ``layer`` with operation ``key`` and show the result, as a widget's Run does.

    ``napari_xray.add_filter(viewer, viewer.layers[0], "sobel", normalize=False)``.
    A second call with the same layer and operation updates the layer the
    first call made (like re-running a widget) unless ``new_layer`` is true.

    Parameters
    ----------
    viewer : napari.Viewer
    layer : napari.layers.Image or None
        A grayscale image layer (2D frame or stack of frames); ``None`` means the
        selected layer.
    key : str
        An operation of :data:`napari_xray.engine.operations.OPERATIONS`.
    new_layer : bool
        Add a new layer even if an earlier call made one for this layer and operation.
    wait : bool
        Return only once the whole stack is computed (default); otherwise the
        frame on screen is shown at once and the rest follows from a worker.
    colormap : str, optional
        Defaults to the operation's (the tutorial's) colormap.
    **params
        The operation's parameters; missing ones take their defaults.

    Returns
    -------
    napari.layers.Layer
        The output layer (Image, or Labels for a bool result).

    Raises
    ------
    KeyError
        Unknown operation or parameter name.
    ValueError
        The layer cannot be filtered (the message says why) or a parameter is invalid.
    """
    operation = get_operation(key)
    operation.resolve(params)  # names and values checked before anything happens
    colormap = colormap or operation.default_colormap
    napari_colormap(colormap)  # raises KeyError for an unknown colormap
    viewer, layer = unwrap(viewer), unwrap(layer)  # napari's proxies compare by identity badly
    if layer is None:
        layer = viewer.layers.selection.active
    problem = input_problem(layer)
    if problem:
        raise ValueError(problem)
    hub = viewer_hub(viewer)
    # Forget earlier calls whose layers are all gone, so their buffers are freed.
    for stale in [s for s, f in hub.console.items() if not f.layers() and not f.busy]:
        hub.console.pop(stale).close()
    slot = (id(layer), operation.key)
    outputs = hub.console.get(slot)
    if outputs is not None and (
        new_layer or not outputs.layers() or outputs.input_layer is not layer
    ):
        outputs.settle()
        if outputs.busy and new_layer:
            outputs.finished.connect(lambda _g=None, outputs=outputs: outputs.close())
        else:
            outputs.close()
        outputs = None
    if outputs is None:
        outputs = SyncedOutputs(viewer, description=f"napari-xray: {operation.title}")
        hub.console[slot] = outputs
    spec = OutputSpec(operation, dict(params), (colormap,))
    (layers,) = outputs.update(layer, [spec], wait=wait)
    return layers[0]


# --------------------------------------------------------------------------- compare all


def _default_input(viewer: napari.Viewer) -> Layer:
    """The selected layer if it can be filtered, else the first image layer that can."""
    active = unwrap(viewer.layers.selection.active)
    if active is not None and input_problem(active) is None:
        return active
    for _name, layer in image_layer_choices(viewer):
        if input_problem(layer) is None:
            return layer
    raise ValueError(input_problem(active))


def comparison_of(viewer: napari.Viewer) -> Comparison:
    """The :class:`~napari_xray.plugin.comparison.Comparison` of ``viewer`` (made on first use)."""
    viewer = unwrap(viewer)
    hub = viewer_hub(viewer)
    if hub.comparison is None:
        hub.comparison = Comparison(viewer)
        hub.comparison.switched.connect(hub.comparison_changed.emit)
    return hub.comparison


def is_comparing(viewer: napari.Viewer) -> bool:
    """True while :func:`compare_all`'s grid view is on in ``viewer``."""
    state = viewer_hub(unwrap(viewer)).comparison
    return state is not None and state.on


def _comparison_input(viewer: napari.Viewer, layer: Layer | None) -> Layer:
    layer = _default_input(viewer) if layer is None else unwrap(layer)
    problem = input_problem(layer)
    if problem:
        raise ValueError(problem)
    return layer


def compare_all(
    viewer: napari.Viewer, layer: Layer | None = None, *, wait: bool = True
) -> list[Layer]:
    """Show the tutorial's comparison of ``layer`` side by side in napari's grid view.

    Shows (or, when already comparing this layer, updates) one layer per panel of
    :data:`~napari_xray.engine.operations.COMPARISON`, hides the other layers, shows
    layer names in the panels and switches the grid on. Undo with
    :func:`restore_view` (the "Compare all" button toggles between the two). The
    panel layers are made by the first call and kept, hidden, by
    :func:`restore_view`; later calls reuse them.

    Parameters
    ----------
    viewer : napari.Viewer
    layer : napari.layers.Image, optional
        A grayscale image or stack; defaults to the selected layer (or the first
        image layer).
    wait : bool
        Compute every frame before returning (default). With ``False`` the frame
        on screen of every panel is shown at once and the rest follows from a
        worker.

    Returns
    -------
    list of napari.layers.Layer
        One layer per panel, in the tutorial's order; the first is ``layer``.

    Raises
    ------
    ValueError
        No layer can be compared, or ``layer`` cannot be filtered (the message says why).
    """
    viewer = unwrap(viewer)
    layer = _comparison_input(viewer, layer)
    state = comparison_of(viewer)
    state.show(layer, wait=wait)
    return state.panels()


def start_comparison(viewer: napari.Viewer, layer: Layer | None = None) -> Comparison:
    """Start :func:`compare_all` the way its button does: the window stays responsive.

    Returns once every panel's frame on screen is computed; the grid with
    ``layer`` and then each panel arrive one per event-loop turn under napari's
    progress bar, and the other frames come from a worker once they are all
    there. Returns the :class:`~napari_xray.plugin.comparison.Comparison` (see
    its ``arriving``, ``busy``, ``panel_shown`` and ``shown``).

    Raises
    ------
    ValueError
        No layer can be compared, or ``layer`` cannot be filtered (the message says why).
    """
    viewer = unwrap(viewer)
    layer = _comparison_input(viewer, layer)
    state = comparison_of(viewer)
    state.show(layer, wait=False, gradual=True)
    return state


def restore_view(viewer: napari.Viewer) -> bool:
    """Undo :func:`compare_all`: hide its layers, restore grid, camera and visibility.

    The comparison's layers stay in the layer list, hidden, and the next
    :func:`compare_all` reuses them (delete them to free their memory).

    Returns
    -------
    bool
        True if a comparison was undone, False if none was on.
    """
    state = viewer_hub(unwrap(viewer)).comparison
    return state is not None and state.hide()
