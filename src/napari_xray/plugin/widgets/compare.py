"""The "Compare all" dock: the comparison grid on and off, the grid saved as PNG, a
layer saved as animated GIF.

The button toggles :func:`napari_xray.plugin.console.start_comparison` (the
panels arrive one by one; the window stays responsive) and
:func:`~napari_xray.plugin.console.restore_view`. "Save grid as PNG" writes
``viewer.screenshot(path, canvas_only=True)``: exactly what the canvas shows
(colormaps, contrast limits, frame), in the canvas' resolution. "Save GIF"
writes the selected image or labels layers as napari shows them, several as a grid
(:func:`napari_xray.plugin._writer.write_layers_gif`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, FloatSpinBox, Label, PushButton

from napari_xray.engine.operations import COMPARISON
from napari_xray.plugin.comparison import preload_panel_imports
from napari_xray.plugin.console import (
    compare_all,
    is_comparing,
    restore_view,
    start_comparison,
)
from napari_xray.plugin.hub import viewer_hub
from napari_xray.plugin.layers import (
    LayerPickerMixin,
    image_layer_choices,
    input_problem,
    qt_alive,
    unwrap,
)
from napari_xray.plugin.widgets.form import DockForm

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["CompareWidget"]


class CompareWidget(LayerPickerMixin, DockForm):
    """Compare all, save the grid as PNG, save a layer as animated GIF.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        napari_viewer = unwrap(napari_viewer)  # napari hands dock widgets a proxy
        self.viewer = napari_viewer
        hub = viewer_hub(napari_viewer)
        preload_panel_imports()  # the first click then finds them loaded
        self._image = ComboBox(name="image_layer", label="Image", choices=self._choices)
        self._toggle_button = PushButton(name="compare_button", text="Compare all")
        self._png_button = PushButton(name="png_button", text="Save grid as PNG…")
        self._duration = FloatSpinBox(
            name="gif_frame_seconds", label="GIF frame (s)", value=0.1,
            min=0.02, max=10.0, step=0.02, tooltip="display time of each frame in the animated GIF",
        )
        self._gif_button = PushButton(name="gif_button", text="Save selected layers as GIF…")
        self._status = Label(name="status_line", value="")
        for widget in (self._toggle_button, self._png_button, self._gif_button, self._status):
            widget.label = ""
        self.extend(
            [self._image, self._toggle_button, self._png_button, self._duration,
             self._gif_button, self._status]
        )
        self._status.native.setWordWrap(True)
        self.finish_form()
        self._toggle_button.changed.connect(self._on_toggle_clicked)
        self._png_button.changed.connect(self._on_png_clicked)
        self._gif_button.changed.connect(self._on_gif_clicked)
        hub.comparison_changed.connect(self._sync_button)
        events = napari_viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            emitter.connect(self._refresh_choices)
        active = unwrap(napari_viewer.layers.selection.active)
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

        With ``wait=False`` (the button) the panels arrive one per event-loop turn
        (:func:`~napari_xray.plugin.console.start_comparison`); with ``wait=True``
        every panel and frame is there on return.

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
            if wait:
                compare_all(self.viewer, layer, wait=True)
            else:
                state = start_comparison(self.viewer, layer)
                self._set_status(f"Showing the {len(COMPARISON)} panels of '{layer.name}'…")
                state.shown.connect(self._on_panels_shown, unique=True)
                return True
        except ValueError as error:
            self._set_status(str(error))
            return False
        self._on_panels_shown()
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
        """Save ``layer`` (default: the selected layers) as an animated GIF, as napari shows it.

        Several selected layers make one grid GIF (in layer-list order). Uses
        :func:`napari_xray.plugin._writer.write_layers_gif` with this widget's frame
        duration.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ValueError
            No layer is selected, or the writer rejected the data or path.
        TypeError
            A selected layer is not an image or labels layer.
        """
        from napari_xray.plugin._writer import write_layers_gif

        if layer is not None:
            layers = [layer]
        else:
            selection = self.viewer.layers.selection
            layers = [ly for ly in self.viewer.layers if ly in selection]
        if not layers:
            raise ValueError("Select the image or labels layers to save as GIF first.")
        written = write_layers_gif(path, layers, duration=self.gif_duration)
        names = ", ".join(f"'{ly.name}'" for ly in layers)
        self._set_status(f"Saved {names} to {written.name}.")
        return written

    # ------------------------------------------------------------------ internals

    def _choices(self, _widget=None):
        state = viewer_hub(self.viewer).comparison  # its layers, also while hidden
        exclude = state.owns if state is not None else None
        return image_layer_choices(self.viewer, exclude=exclude)

    def _on_panels_shown(self) -> None:
        state = viewer_hub(self.viewer).comparison
        layer = state.input_layer if state is not None else None
        if layer is not None:
            self._set_status(f"Comparing {len(COMPARISON)} panels of '{layer.name}'.")

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
        except (TypeError, ValueError, OSError) as error:
            self._set_status(str(error))

