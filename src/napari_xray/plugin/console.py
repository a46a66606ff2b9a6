"""What the napari console (or a script) calls: :func:`add_filter`, :func:`compare_all`
and :func:`restore_view`; the X-ray widgets' buttons call the same functions.

``napari_xray.add_filter(viewer, layer, "sobel", normalize=False)`` shows one
operation's result as a layer. :func:`compare_all` shows the tutorial's
comparison (:data:`napari_xray.engine.operations.COMPARISON`) in napari's grid
view, one layer per panel named by its title (the original is the input layer
itself; Sobel gray and hot are two layers sharing one array), with every other
layer hidden; :func:`restore_view` removes those layers and restores the grid,
the camera, the layers' visibility and their name overlays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from napari_xray.engine.operations import COMPARISON, ComparisonPanel, get_operation
from napari_xray.plugin.hub import viewer_hub
from napari_xray.plugin.layers import (
    image_layer_choices,
    input_problem,
    layer_alive,
    napari_colormap,
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
    "comparison_specs",
    "is_comparing",
    "restore_view",
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


_GRID_FIELDS = ("stride", "shape", "spacing", "enabled")


def _grid(viewer: napari.Viewer):
    """napari's grid model (``viewer.canvas.grid`` since 0.9, ``viewer.grid`` before)."""
    canvas = getattr(viewer, "canvas", None)
    grid = getattr(canvas, "grid", None)
    return grid if grid is not None else viewer.grid


def _camera(viewer: napari.Viewer):
    """napari's camera model (``viewer.scene.camera`` since 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    camera = getattr(scene, "camera", None)
    return camera if camera is not None else viewer.camera


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


class Comparison:
    """The comparison on in one viewer: its outputs, and what it changed so it can be undone."""

    def __init__(self, viewer: napari.Viewer, input_layer: Layer) -> None:
        self.input_layer = input_layer
        self.outputs = SyncedOutputs(viewer, description="napari-xray: compare all")
        grid = _grid(viewer)
        self.grid_state = {
            name: getattr(grid, name) for name in _GRID_FIELDS if hasattr(grid, name)
        }
        camera = _camera(viewer)
        self.camera = (tuple(camera.center), camera.zoom)
        self.visibility = [(layer, layer.visible) for layer in viewer.layers]
        self.name_overlays = [
            (layer, layer.name_overlay.visible)
            for layer in viewer.layers
            if hasattr(layer, "name_overlay")
        ]


def _default_input(viewer: napari.Viewer) -> Layer:
    """The selected layer if it can be filtered, else the first image layer that can."""
    active = viewer.layers.selection.active
    if active is not None and input_problem(active) is None:
        return active
    for _name, layer in image_layer_choices(viewer):
        if input_problem(layer) is None:
            return layer
    raise ValueError(input_problem(active))


def is_comparing(viewer: napari.Viewer) -> bool:
    """True while :func:`compare_all`'s grid view is on in ``viewer``."""
    return viewer_hub(viewer).comparison is not None


def compare_all(
    viewer: napari.Viewer, layer: Layer | None = None, *, wait: bool = True
) -> list[Layer]:
    """Show the tutorial's comparison of ``layer`` side by side in napari's grid view.

    Adds (or, when already comparing this layer, updates) one layer per panel of
    :data:`~napari_xray.engine.operations.COMPARISON`, hides the other layers, shows
    layer names in the panels and switches the grid on. Undo with
    :func:`restore_view` (the "Compare all" button toggles between the two).

    Parameters
    ----------
    viewer : napari.Viewer
    layer : napari.layers.Image, optional
        A grayscale image or stack; defaults to the selected layer (or the first
        image layer).
    wait : bool
        Compute every frame before returning (default). With ``False`` the frame
        on screen of every panel is shown at once and the rest follows from a
        worker, as the button does.

    Returns
    -------
    list of napari.layers.Layer
        One layer per panel, in the tutorial's order; the first is ``layer``.

    Raises
    ------
    ValueError
        No layer can be compared, or ``layer`` cannot be filtered (the message says why).
    """
    if layer is None:
        layer = _default_input(viewer)
    problem = input_problem(layer)
    if problem:
        raise ValueError(problem)
    hub = viewer_hub(viewer)
    state = hub.comparison
    if state is not None and state.input_layer is not layer:
        restore_view(viewer)
        state = None
    created = state is None
    if created:
        state = Comparison(viewer, layer)
    specs, slots = comparison_specs()
    try:
        outputs = state.outputs.update(layer, specs, wait=wait)
    except ValueError:
        if created:
            for output in state.outputs.layers():
                viewer.layers.remove(output)
            state.outputs.close()
        raise
    hub.comparison = state
    panels = [layer if slot is None else outputs[slot[0]][slot[1]] for slot in slots]
    _arrange(viewer, panels)
    if created:
        hub.comparison_changed.emit(True)
    return panels


def _arrange(viewer: napari.Viewer, panels: list[Layer]) -> None:
    """Only the panels visible, added panels in order on top, names shown, grid on."""
    members = {id(layer) for layer in panels}
    for other in viewer.layers:
        if id(other) not in members:
            other.visible = False
    # The grid fills cells in layer-list order: the input, then the panels in order.
    indices = [viewer.layers.index(panel) for panel in panels]
    if indices != sorted(indices):
        for panel in panels[1:]:
            viewer.layers.move(viewer.layers.index(panel), len(viewer.layers))
    for panel in panels:
        panel.visible = True
        if hasattr(panel, "name_overlay"):
            panel.name_overlay.visible = True
    grid = _grid(viewer)
    grid.stride = 1
    grid.shape = (-1, -1)
    grid.enabled = True
    viewer.reset_view()


def restore_view(viewer: napari.Viewer) -> bool:
    """Undo :func:`compare_all`: remove its layers, restore grid, camera and visibility.

    Returns
    -------
    bool
        True if a comparison was undone, False if none was on.
    """
    hub = viewer_hub(viewer)
    state = hub.comparison
    if state is None:
        return False
    hub.comparison = None
    state.outputs.close()
    # Grid first: with the grid on, every removal and visibility change re-lays out
    # all the viewboxes (seconds for nine layers); with it off they are cheap.
    grid = _grid(viewer)
    grid.enabled = False
    for name, value in state.grid_state.items():
        setattr(grid, name, value)
    for layer in state.outputs.layers():
        viewer.layers.remove(layer)
    for layer, visible in state.visibility:
        if layer_alive(viewer, layer):
            layer.visible = visible
    for layer, visible in state.name_overlays:
        if layer_alive(viewer, layer):
            layer.name_overlay.visible = visible
    center, zoom = state.camera
    camera = _camera(viewer)
    camera.center = center
    camera.zoom = zoom
    hub.comparison_changed.emit(False)
    return True
