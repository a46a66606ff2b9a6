"""The dock widget of one engine operation, and the six classes npe2 opens.

:class:`OperationWidget` builds its form from an
:class:`~napari_xray.engine.operations.Operation`: an image-layer picker, one
:class:`~napari_xray.plugin.widgets.controls.ParameterControl` per parameter, a
colormap drop-down (the operation's colormaps, the tutorial's first),
**Auto-apply** (live preview: each parameter change recomputes the frame on
screen at once and the rest of the stack in a worker), **New layer on Run** (a
Run then starts a new output layer and keeps the previous one; live-preview
changes always update the latest one), **Run** and a status line that says why
nothing happened when nothing can happen. ``LogWidget``, ``SobelWidget`` … fix
the operation; :func:`make_widget` picks the class by operation key.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from magicgui.widgets import CheckBox, ComboBox, Label, PushButton
from superqt.utils import qthrottled

from napari_xray.engine.operations import Operation, get_operation
from napari_xray.plugin.hub import viewer_hub
from napari_xray.plugin.layers import (
    LayerPickerMixin,
    data_range,
    image_layer_choices,
    input_problem,
    qt_alive,
    same_layer,
    unwrap,
)
from napari_xray.plugin.outputs import SyncedOutputs
from napari_xray.plugin.result_layers import OutputSpec
from napari_xray.plugin.widgets.controls import ParameterControl
from napari_xray.plugin.widgets.form import DockForm

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = [
    "WIDGET_CLASSES",
    "CannyWidget",
    "GradientWidget",
    "LogWidget",
    "MaskWidget",
    "OperationWidget",
    "PrewittWidget",
    "SobelWidget",
    "make_widget",
]


class OperationWidget(LayerPickerMixin, DockForm):
    """The widget of one engine operation, built from its description.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose image layers it filters.
    operation : Operation or str, optional
        The operation (or its key); defaults to the class's ``operation_key``
        (set by ``LogWidget``, ``SobelWidget`` …).

    Attributes
    ----------
    controls : dict of str to ParameterControl
        One control per parameter, by name.
    """

    operation_key: ClassVar[str | None] = None

    def __init__(
        self, napari_viewer: napari.Viewer, operation: Operation | str | None = None
    ) -> None:
        if isinstance(operation, Operation):
            op = operation
        else:
            key = operation or self.operation_key
            if key is None:
                raise TypeError("OperationWidget needs an operation (or use e.g. SobelWidget)")
            op = get_operation(key)
        super().__init__(labels=True)
        # napari hands dock widgets a proxy of the viewer; work on the viewer itself so
        # that layers compare by identity (see napari_xray.plugin.layers.unwrap).
        napari_viewer = unwrap(napari_viewer)
        self.viewer = napari_viewer
        self.operation = op
        self._outputs: SyncedOutputs | None = None
        self._retired: list[SyncedOutputs] = []
        self._preview_pending = False

        self._header = Label(name="header", value=f"<b>{op.title}</b>", tooltip=op.description)
        self._header.label = ""
        self._image = ComboBox(
            name="image_layer", label="Image", choices=self._image_choices,
            tooltip="The image layer to filter: a grayscale frame or a stack of frames.",
        )
        self.controls = {
            p.name: ParameterControl(p, intensity=p.name in op.intensity_parameters)
            for p in op.parameters
        }
        self._colormap = ComboBox(
            name="colormap_choice", label="Colormap", choices=list(op.colormaps),
            value=op.default_colormap,
            tooltip="Colormap of the output layer; changing it recolours the layer without "
            "recomputing it.",
        )
        self._colormap.enabled = len(op.colormaps) > 1
        self._auto = CheckBox(
            name="auto_apply_check", text="Auto-apply (live preview)", value=True,
            tooltip="Every parameter change recomputes the frame on screen at once, then the "
            "rest of the stack in the background.",
        )
        self._new_layer = CheckBox(
            name="new_layer_check", text="New layer on Run (keep the previous one)", value=False,
            tooltip="Run adds a new output layer and keeps the previous one; live changes "
            "update the newest.",
        )
        self._run_button = PushButton(
            name="run_button", text="Run",
            tooltip="Filter the chosen image with these parameters.",
        )
        self._copy_button = PushButton(
            name="copy_python_button", text="Copy as Python",
            tooltip="Copy Python that computes the output layer again, bit for bit, from "
            "its sample or file (paste it into napari's console or a script).",
        )
        self._status = Label(name="status_line", value="")
        for widget in (self._auto, self._new_layer, self._run_button, self._copy_button,
                       self._status):  # fmt: skip
            widget.label = ""
        self.extend(
            [
                self._header,
                self._image,
                *(control.widget for control in self.controls.values()),
                self._colormap,
                self._auto,
                self._new_layer,
                self._run_button,
                self._copy_button,
                self._status,
            ]
        )
        self._status.native.setWordWrap(True)
        self.finish_form()

        # The first parameter change of an event-loop turn is previewed at once; later
        # ones in the same turn coalesce into one preview with the final values.
        self._preview_throttled = qthrottled(self._preview, timeout=0, parent=self.native)

        for control in self.controls.values():
            control.changed.connect(self._on_parameter_changed)
        self._colormap.changed.connect(self._on_colormap_changed)
        self._image.changed.connect(self._on_image_changed)
        self._run_button.changed.connect(self._on_run_clicked)
        self._copy_button.changed.connect(self._on_copy_clicked)
        events = napari_viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            emitter.connect(self._refresh_choices)
        self.native.destroyed.connect(_closer(self))

        active = unwrap(napari_viewer.layers.selection.active)
        if active is not None and input_problem(active) is None and not self._owns(active):
            self._image.value = active
        self._on_image_changed()

    # ------------------------------------------------------------------ public API

    @property
    def output_layer(self) -> Layer | None:
        """This widget's current output layer, if it is still in the viewer."""
        layers = self._outputs.layers() if self._outputs is not None else []
        return layers[0] if layers else None

    @property
    def outputs(self) -> SyncedOutputs | None:
        """What keeps the current output layer in step (``None`` before the first run)."""
        return self._outputs

    @property
    def busy(self) -> bool:
        """True while a preview is pending or frames are still being computed."""
        return self._preview_pending or (self._outputs is not None and self._outputs.busy)

    @property
    def auto_apply(self) -> bool:
        """Whether parameter changes recompute the output at once (live preview)."""
        return bool(self._auto.value)

    @auto_apply.setter
    def auto_apply(self, value: bool) -> None:
        self._auto.value = bool(value)

    @property
    def new_layer(self) -> bool:
        """Whether Run starts a new output layer (keeping the previous one)."""
        return bool(self._new_layer.value)

    @new_layer.setter
    def new_layer(self, value: bool) -> None:
        self._new_layer.value = bool(value)

    @property
    def colormap(self) -> str:
        """The colormap of the output layer."""
        return str(self._colormap.value)

    @colormap.setter
    def colormap(self, name: str) -> None:
        self._colormap.value = name

    def parameters(self) -> dict[str, Any]:
        """The current parameter values, by name (``None`` = engine default)."""
        return {name: control.value for name, control in self.controls.items()}

    def set_parameters(self, **values: Any) -> None:
        """Set parameter controls by name (with auto-apply on, this starts a preview).

        Raises
        ------
        KeyError
            A name is not a parameter of the operation (the message lists them).
        """
        for name, value in values.items():
            if name not in self.controls:
                self.operation.parameter(name)  # raises a KeyError listing valid names
            self.controls[name].value = value

    def run(self, *, new_layer: bool | None = None, wait: bool = False) -> Layer | None:
        """Filter the chosen layer with the current parameters, as the Run button does.

        The frame on screen is shown before this returns; the other frames of a
        stack follow from a worker unless ``wait`` is true.

        Parameters
        ----------
        new_layer : bool, optional
            Start a new output layer and keep the previous one; defaults to the
            "New layer on Run" checkbox.
        wait : bool
            Compute the whole stack before returning.

        Returns
        -------
        napari.layers.Layer or None
            The output layer, or ``None`` when nothing could be done; the status
            line then says why (no or unsuitable layer, rejected parameters).
        """
        self._preview_pending = False
        layer = self._image.value
        problem = input_problem(layer) if layer is not None else self._no_image_reason()
        if problem:
            self._set_status(problem)
            return None
        params = self.parameters()
        problem = self.operation.problem(params, layer.data.dtype)
        if problem:
            self._set_status(problem)
            return None
        if new_layer is None:
            new_layer = bool(self._new_layer.value)
        outputs = self._outputs_for(layer, new_layer=new_layer)
        spec = OutputSpec(self.operation, params, (str(self._colormap.value),))
        try:
            (layers,) = outputs.update(layer, [spec], wait=wait)
        except ValueError as error:
            self._set_status(f"{self.operation.title}: {error}")
            return None
        return layers[0]

    # ------------------------------------------------------------------ internals

    def _image_choices(self, _widget=None):
        return image_layer_choices(self.viewer, exclude=self._owns)

    def _owns(self, layer) -> bool:
        current = [self._outputs] if self._outputs is not None else []
        return any(outputs.owns(layer) for outputs in [*self._retired, *current])

    def _no_image_reason(self) -> str:
        active = self.viewer.layers.selection.active
        if active is not None:
            reason = input_problem(active)
            if reason:
                return reason
        return input_problem(None)

    def _publish_intensities(self) -> None:
        """Announce the intensity parameters (the Statistics dock draws the mask threshold)."""
        hub = viewer_hub(self.viewer)
        for name in self.operation.intensity_parameters:
            hub.publish(self.operation.key, name, self.controls[name].value)

    def _on_parameter_changed(self, _value=None) -> None:
        self._publish_intensities()
        if not self._auto.value:
            return
        self._preview_pending = True
        self._preview_throttled()

    def _preview(self) -> None:
        if self._preview_pending and qt_alive(self):
            self.run(new_layer=False)

    def _on_run_clicked(self, _value=None) -> None:
        self.run()

    def copy_as_python(self) -> str | None:
        """Put :func:`napari_xray.as_python` of the output layer on the clipboard and
        return it (``None``, and the status says why, before the first run)."""
        from qtpy.QtWidgets import QApplication

        from napari_xray.plugin.reproduce import as_python

        layer = self.output_layer
        if layer is None:
            self._set_status("Run first: there is no output layer to copy as Python yet.")
            return None
        snippet = as_python(layer, self.viewer)
        QApplication.clipboard().setText(snippet)
        self._set_status(f"Copied the Python that makes '{layer.name}' again: paste it "
                         "into napari's console or a script.")  # fmt: skip
        return snippet

    def _on_copy_clicked(self, _value=None) -> None:
        self.copy_as_python()

    def _on_colormap_changed(self, name: str) -> None:
        if self._outputs is not None:
            self._outputs.set_colormap(str(name))

    def _on_image_changed(self, _value=None) -> None:
        layer = self._image.value
        problem = input_problem(layer) if layer is not None else None
        self._set_status(problem or "")
        if layer is None or problem:
            return
        low, high = data_range(layer)
        for control in self.controls.values():
            control.fit_input(low, high, layer.data.dtype)
        self._publish_intensities()

    def _outputs_for(self, layer, *, new_layer: bool) -> SyncedOutputs:
        outputs = self._outputs
        if (
            outputs is not None
            and outputs.layers()
            and (new_layer or not same_layer(outputs.input_layer, layer))
        ):
            self._retire(outputs)
            outputs = None
        if outputs is None:
            outputs = SyncedOutputs(
                self.viewer, description=f"napari-xray: {self.operation.title}"
            )
            outputs.status.connect(self._set_status)
            self._outputs = outputs
        return outputs

    def _retire(self, outputs: SyncedOutputs) -> None:
        """Stop updating ``outputs``' layers; a running stack computation still completes."""
        outputs.status.disconnect(self._set_status)
        if self._outputs is outputs:
            self._outputs = None
        outputs.settle()
        if outputs.busy:
            self._retired.append(outputs)

            def _done(_generation=None, outputs=outputs):
                outputs.close()
                if outputs in self._retired:
                    self._retired.remove(outputs)

            outputs.finished.connect(_done)
        else:
            outputs.close()


def _closer(widget: OperationWidget):
    """A callback for ``destroyed`` that stops the widget's work without keeping it alive."""
    ref = weakref.ref(widget)

    def _on_destroyed(*_args) -> None:
        owner = ref()
        if owner is None:
            return
        owner._preview_pending = False
        for outputs in [owner._outputs, *owner._retired]:
            if outputs is None:
                continue
            try:
                outputs.close()
            except Exception:  # noqa: BLE001 - a Qt slot at teardown must never raise
                pass

    return _on_destroyed


# ------------------------------------------------------------------------ one class per operation


class LogWidget(OperationWidget):
    """Laplacian of Gaussian: the second-derivative edge response."""

    operation_key = "log"


class GradientWidget(OperationWidget):
    """Gaussian gradient magnitude: the smoothed first-derivative magnitude."""

    operation_key = "gradient"


class SobelWidget(OperationWidget):
    """Sobel magnitude: the hypot of the Sobel derivatives along both image axes."""

    operation_key = "sobel"


class PrewittWidget(OperationWidget):
    """Fourier-Prewitt magnitude: Fourier-domain Gaussian smoothing, then Prewitt."""

    operation_key = "prewitt"


class CannyWidget(OperationWidget):
    """Canny edges: smoothing, gradient, non-maximum suppression, hysteresis."""

    operation_key = "canny"


class MaskWidget(OperationWidget):
    """Threshold mask: keep the pixels above a threshold (values or binary)."""

    operation_key = "mask"


#: The widget class of each operation, by operation key.
WIDGET_CLASSES: dict[str, type[OperationWidget]] = {
    cls.operation_key: cls
    for cls in (LogWidget, GradientWidget, SobelWidget, PrewittWidget, CannyWidget, MaskWidget)
}


def make_widget(viewer: napari.Viewer, key: str) -> OperationWidget:
    """The widget of operation ``key`` for ``viewer`` (not yet docked).

    Raises
    ------
    KeyError
        ``key`` is not an operation (the message lists the valid keys).
    """
    get_operation(key)
    return WIDGET_CLASSES[key](viewer)
