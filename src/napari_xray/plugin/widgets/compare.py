"""Compare all: the tutorial's side-by-side set as layers in napari's grid view.

One click (or :func:`compare_all`) adds one layer per panel of
:data:`napari_xray.engine.operations.COMPARISON`, named by the panel's title (the
original is the input layer itself; Sobel gray and hot are two layers sharing
one array; the input's name is in each layer's metadata), hides every other
layer, shows the layer names in the panels and switches napari's grid view on,
so all panels follow the same frame slider. A second click (or
:func:`restore_view`) removes the layers it added and restores the grid, the
camera, the layers' visibility and their name overlays as they were.

"Save grid as PNG" writes ``viewer.screenshot(path, canvas_only=True)``: exactly
what the canvas shows (colormaps, contrast limits, frame), in the canvas'
resolution. "Save GIF" writes the selected image layer with
:func:`napari_xray.io.gif.write_gif`.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton

from napari_xray.plugin.hub import viewer_hub
from napari_xray.plugin.layers import (
    LayerPickerMixin,
    image_layer_choices,
    input_problem,
    layer_alive,
    qt_alive,
)
from napari_xray.plugin.outputs import LiveFilter, OutputSpec
from napari_xray.engine.operations import COMPARISON, get_operation

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["CompareWidget", "compare_all", "comparison_specs", "is_comparing", "restore_view"]

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


def comparison_specs(input_layer: Layer, panels=COMPARISON):
    """The outputs of the comparison of ``input_layer`` and where each panel finds its layer.

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
        operation = get_operation(panel.key)
        params = operation.resolve(panel.params)
        group = (panel.key, tuple(sorted(params.items())))
        if group not in groups:
            groups[group] = len(specs)
            specs.append(OutputSpec(operation, params))
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


class _Comparison:
    """What compare-all changed in one viewer, so that it can be undone."""

    def __init__(self, viewer: napari.Viewer, input_layer: Layer) -> None:
        self._viewer_ref = weakref.ref(viewer)
        self.input_layer = input_layer
        self.live = LiveFilter(viewer, description="napari-xray: compare all")
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
        self.panel_layers: list[Layer] = []


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
        state = _Comparison(viewer, layer)
    specs, slots = comparison_specs(layer)
    try:
        outputs = state.live.update(layer, specs, wait=wait)
    except ValueError:
        if created:
            for output in state.live.layers():
                viewer.layers.remove(output)
            state.live.close()
        raise
    hub.comparison = state
    panels = [layer if slot is None else outputs[slot[0]][slot[1]] for slot in slots]
    state.panel_layers = panels
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
    state.live.close()
    # Grid first: with the grid on, every removal and visibility change re-lays out
    # all the viewboxes (seconds for nine layers); with it off they are cheap.
    grid = _grid(viewer)
    grid.enabled = False
    for name, value in state.grid_state.items():
        setattr(grid, name, value)
    for layer in state.live.layers():
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


class CompareWidget(LayerPickerMixin, Container):
    """Compare all, save the grid as PNG, save a layer as animated GIF.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        hub = viewer_hub(napari_viewer)
        self._image = ComboBox(name="image_layer", label="Image", choices=self._choices)
        self._toggle_button = PushButton(name="compare_button", text="Compare all")
        self._png_button = PushButton(name="png_button", text="Save grid as PNG…")
        self._duration = FloatSpinBox(
            name="gif_frame_seconds", label="GIF frame (s)", value=0.1,
            min=0.02, max=10.0, step=0.02, tooltip="display time of each frame in the animated GIF",
        )
        self._gif_button = PushButton(name="gif_button", text="Save selected layer as GIF…")
        self._status = Label(name="status_line", value="")
        for widget in (self._toggle_button, self._png_button, self._gif_button, self._status):
            widget.label = ""
        self.extend(
            [self._image, self._toggle_button, self._png_button, self._duration,
             self._gif_button, self._status]
        )
        self._status.native.setWordWrap(True)
        self._toggle_button.changed.connect(self._on_toggle_clicked)
        self._png_button.changed.connect(self._on_png_clicked)
        self._gif_button.changed.connect(self._on_gif_clicked)
        hub.comparison_changed.connect(self._sync_button)
        events = napari_viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            emitter.connect(self._refresh_choices)
        active = napari_viewer.layers.selection.active
        if active is not None and input_problem(active) is None:
            self._image.value = active
        self._sync_button(is_comparing(napari_viewer))

    # ------------------------------------------------------------------ public API

    @property
    def gif_duration(self) -> float:
        """Display time of each GIF frame, in seconds."""
        return float(self._duration.value)

    @gif_duration.setter
    def gif_duration(self, seconds: float) -> None:
        self._duration.value = seconds

    def toggle(self, *, wait: bool = False) -> bool:
        """Switch the comparison on (for the chosen layer) or restore the previous view.

        Returns
        -------
        bool
            True when the comparison is on afterwards. When nothing could be
            compared it stays off and the status line says why.
        """
        if is_comparing(self.viewer):
            restore_view(self.viewer)
            self._set_status("Previous view restored.")
            return False
        layer = self._image.value
        problem = input_problem(layer)
        if layer is None:
            active = self.viewer.layers.selection.active
            problem = input_problem(active) if active is not None else problem
        if problem:
            self._set_status(problem)
            return False
        try:
            panels = compare_all(self.viewer, layer, wait=wait)
        except ValueError as error:
            self._set_status(str(error))
            return False
        self._set_status(f"Comparing {len(panels)} panels of '{layer.name}'.")
        return True

    def save_grid_png(self, path: str | Path) -> Path:
        """Save the canvas (the compare grid when it is on) as a PNG file.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ValueError
            ``path`` does not end in ``.png``.
        """
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"{path} does not end in .png; pass a .png file name")
        self.viewer.screenshot(str(path), canvas_only=True)
        self._set_status(f"Saved {path.name}.")
        return path

    def save_gif(self, path: str | Path, layer: Layer | None = None) -> Path:
        """Save ``layer`` (default: the selected image layer) as an animated GIF.

        Uses :func:`napari_xray.io.gif.write_gif` with this widget's frame duration.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ValueError
            No image layer is selected, or the writer rejected the data or path.
        """
        from napari.layers import Image

        from napari_xray.io.gif import write_gif

        layer = layer if layer is not None else self.viewer.layers.selection.active
        if not isinstance(layer, Image):
            raise ValueError("select an image layer to save as GIF")
        written = write_gif(path, layer.data, _layer_meta(layer), duration=self.gif_duration)
        self._set_status(f"Saved '{layer.name}' to {Path(written[0]).name}.")
        return Path(written[0])

    # ------------------------------------------------------------------ internals

    def _choices(self, _widget=None):
        state = viewer_hub(self.viewer).comparison
        exclude = state.live.owns if state is not None else None
        return image_layer_choices(self.viewer, exclude=exclude)

    def _sync_button(self, comparing: bool) -> None:
        if qt_alive(self):
            self._toggle_button.text = "Restore previous view" if comparing else "Compare all"

    def _on_toggle_clicked(self, _value=None) -> None:
        self.toggle()

    def _ask_path(self, caption: str, suffix: str) -> Path | None:
        from qtpy.QtWidgets import QFileDialog

        name, _ = QFileDialog.getSaveFileName(
            self.native, caption, f"napari-xray{suffix}", f"*{suffix}"
        )
        if not name:
            return None
        path = Path(name)
        return path if path.suffix.lower() == suffix else path.with_suffix(suffix)

    def _on_png_clicked(self, _value=None) -> None:
        path = self._ask_path("Save the compare grid as PNG", ".png")
        if path is not None:
            self.save_grid_png(path)

    def _on_gif_clicked(self, _value=None) -> None:
        path = self._ask_path("Save the selected layer as animated GIF", ".gif")
        if path is None:
            return
        try:
            self.save_gif(path)
        except (ValueError, OSError) as error:
            self._set_status(str(error))


def _layer_meta(layer: Layer) -> dict[str, Any]:
    """The ``meta`` dict napari hands a writer for ``layer``."""
    return {
        "name": layer.name,
        "rgb": bool(getattr(layer, "rgb", False)),
        "multiscale": bool(getattr(layer, "multiscale", False)),
        "metadata": dict(layer.metadata),
    }
