"""napari widgets for the X-ray filters: one generic widget per engine operation,
"Compare all", "Statistics", and the console functions behind them.

Every operation widget is built by :class:`OperationWidget` from the engine's one
description of its operations (:data:`napari_xray.engine.operations.OPERATIONS`); the
classes npe2 opens (``LogWidget``, ``SobelWidget``, …) are generated from it by a
loop, so adding an operation is one entry there plus its manifest lines. The
widgets never compute beyond calling the engine.

Controls, from each :class:`~napari_xray.engine.operations.Parameter`:

* numbers with both bounds: a slider with an editable readout (min/max/step from
  the parameter); numbers in the input's intensity units
  (``Operation.intensity_parameters``: the mask threshold, Canny's thresholds)
  are ranged over the chosen layer's value range instead;
* optional numbers (``None`` = the engine's documented default): the slider plus
  an **auto** checkbox; ticked means ``None`` and disables the slider;
* booleans: a checkbox; strings with choices: a drop-down.

Plus an image-layer picker, a colormap drop-down (the operation's colormaps, the
tutorial's first), **Auto-apply** (live preview: each parameter change recomputes
the frame on screen at once and the rest of the stack in a worker), **New layer
on Run** (a Run then starts a new output layer and keeps the previous one;
live-preview changes always update the latest one), **Run** and a status line
that says why nothing happened when nothing can happen.

Console scripting: :func:`add_filter` and :func:`compare_all` do what the
buttons do (``napari_xray.add_filter(viewer, layer, "sobel", normalize=False)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSlider,
    FloatSpinBox,
    Label,
    PushButton,
    Slider,
    SpinBox,
)

from napari_xray.plugin.widgets.compare import CompareWidget, compare_all, is_comparing, restore_view
from napari_xray.plugin.hub import viewer_hub
from napari_xray.plugin.layers import (
    LayerPickerMixin,
    data_range,
    image_layer_choices,
    input_problem,
    napari_colormap,
    qt_alive,
)
from napari_xray.plugin.outputs import LiveFilter, OutputSpec
from napari_xray.plugin.widgets.statistics import StatisticsWidget
from napari_xray.engine.operations import OPERATIONS, Operation, Parameter, get_operation

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = [
    "WIDGET_CLASSES",
    "CompareWidget",
    "LiveFilter",
    "OperationWidget",
    "OutputSpec",
    "StatisticsWidget",
    "add_filter",
    "compare_all",
    "is_comparing",
    "make_widget",
    "restore_view",
    # generated below, one per operation: LogWidget, GradientWidget, SobelWidget, …
]

#: Range of an intensity slider before any layer is chosen (8-bit images).
_DEFAULT_INTENSITY_RANGE = (0.0, 255.0)
_UNBOUNDED = 1e9


# --------------------------------------------------------------------------- controls


class ParameterControl:
    """The magicgui control of one engine :class:`Parameter`.

    ``widget`` goes into the form; ``value`` reads/writes the parameter's value
    (``None`` for an optional number set to auto); ``changed`` is a psygnal
    signal emitted on every user or programmatic change.
    """

    def __init__(self, parameter: Parameter, *, intensity: bool = False) -> None:
        self.parameter = parameter
        self.intensity = intensity
        self._auto: CheckBox | None = None
        self._number = None
        tooltip = parameter.help or None
        if parameter.kind is bool:
            self.widget = CheckBox(
                name=parameter.name, text=parameter.title, value=bool(parameter.default),
                tooltip=tooltip,
            )
            self.widget.label = ""
            self.changed = self.widget.changed
            return
        if parameter.kind is str:
            self.widget = ComboBox(
                name=parameter.name, label=parameter.title, choices=list(parameter.choices),
                value=parameter.default, tooltip=tooltip,
            )
            self.changed = self.widget.changed
            return
        self._number = self._make_number(parameter, tooltip)
        if not parameter.optional:
            self.widget = self._number
            self.changed = self.widget.changed
            return
        self._auto = CheckBox(name="auto", text="auto", value=parameter.default is None,
                              tooltip="use the engine's default")
        self._number.enabled = not self._auto.value
        self.widget = Container(
            name=parameter.name, label=parameter.title, layout="horizontal", labels=False,
            widgets=[self._number, self._auto],
        )
        self.widget.margins = (0, 0, 0, 0)
        self._auto.changed.connect(self._on_auto)
        self.changed = self.widget.changed

    def _make_number(self, parameter: Parameter, tooltip):
        is_float = parameter.kind is float
        low, high = parameter.minimum, parameter.maximum
        if self.intensity:
            low = _DEFAULT_INTENSITY_RANGE[0] if low is None else max(low, 0.0)
            high = _DEFAULT_INTENSITY_RANGE[1] if high is None else high
        default = parameter.default
        if default is None:
            default = low if low is not None else 0.0
        kwargs = {"name": "value" if parameter.optional else parameter.name,
                  "value": default, "tooltip": tooltip}
        if not parameter.optional:
            kwargs["label"] = parameter.title
        if parameter.step is not None:
            kwargs["step"] = parameter.step
        if low is not None and high is not None:
            cls = FloatSlider if is_float else Slider
            return cls(min=low, max=high, **kwargs)
        cls = FloatSpinBox if is_float else SpinBox
        return cls(
            min=-_UNBOUNDED if low is None else low,
            max=_UNBOUNDED if high is None else high,
            **kwargs,
        )

    def _on_auto(self, auto: bool) -> None:
        self._number.enabled = not auto

    @property
    def value(self) -> Any:
        """The parameter's current value (``None`` for an optional number on auto)."""
        if self._auto is not None and self._auto.value:
            return None
        if self._number is not None:
            value = self._number.value
            return float(value) if self.parameter.kind is float else int(value)
        return self.widget.value

    @value.setter
    def value(self, value: Any) -> None:
        if self._auto is not None:
            if value is None:
                self._auto.value = True
                return
            self._auto.value = False
        if self._number is not None:
            if value is None:
                raise ValueError(f"{self.parameter.name} needs a value")
            self._number.value = value
        else:
            self.widget.value = value

    def set_range(self, low: float, high: float, *, integer: bool = False) -> None:
        """Range an intensity control over ``low``..``high`` without emitting a change.

        The parameter's own bounds still apply; the value is clipped into range.
        """
        number = self._number
        if number is None or not hasattr(number, "range"):
            return
        p = self.parameter
        low = low if p.minimum is None else max(low, p.minimum)
        high = high if p.maximum is None else min(high, p.maximum)
        if not high > low:
            high = low + 1.0
        step = p.step or (1.0 if integer and high - low >= 20 else (high - low) / 1000.0)
        with number.changed.blocked():
            number.range = (low, high)
            number.step = step
            number.value = min(max(number.value, low), high)


# --------------------------------------------------------------------------- widgets


class OperationWidget(LayerPickerMixin, Container):
    """The widget of one engine operation, generated from its description.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose image layers it filters.
    operation : Operation or str, optional
        The operation (or its key); defaults to the class's ``operation_key``
        (set on the generated classes such as ``SobelWidget``).

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
                raise TypeError("OperationWidget needs an operation (or use a generated class)")
            op = get_operation(key)
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.operation = op
        self._live: LiveFilter | None = None
        self._retired: list[LiveFilter] = []
        self._pending = False

        self._header = Label(name="header", value=f"<b>{op.title}</b>", tooltip=op.description)
        self._header.label = ""
        self._image = ComboBox(name="image_layer", label="Image", choices=self._image_choices)
        self.controls = {
            p.name: ParameterControl(p, intensity=p.name in op.intensity_parameters)
            for p in op.parameters
        }
        self._colormap = ComboBox(
            name="colormap_choice", label="Colormap", choices=list(op.colormaps),
            value=op.colormaps[0],
        )
        self._colormap.enabled = len(op.colormaps) > 1
        self._auto = CheckBox(name="auto_apply_check", text="Auto-apply (live preview)", value=True)
        self._new_layer = CheckBox(
            name="new_layer_check", text="New layer on Run (keep the previous one)", value=False
        )
        self._run_button = PushButton(name="run_button", text="Run")
        self._status = Label(name="status_line", value="")
        for widget in (self._auto, self._new_layer, self._run_button, self._status):
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
                self._status,
            ]
        )
        self._status.native.setWordWrap(True)

        from qtpy.QtCore import QTimer

        # Leading-edge throttle: the first parameter change of an event-loop turn is
        # previewed at once; later ones in the same turn coalesce into one trailing
        # preview with the final values when this zero-delay timer fires.
        self._throttled = False
        self._timer = QTimer(self.native)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._apply_pending)

        for control in self.controls.values():
            control.changed.connect(self._on_parameter_changed)
        self._colormap.changed.connect(self._on_colormap_changed)
        self._image.changed.connect(self._on_image_changed)
        self._run_button.changed.connect(self._on_run_clicked)
        events = napari_viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered):
            emitter.connect(self._refresh_choices)
        self.native.destroyed.connect(_closer(self))

        active = napari_viewer.layers.selection.active
        if active is not None and input_problem(active) is None and not self._owns(active):
            self._image.value = active
        self._on_image_changed()

    # ------------------------------------------------------------------ public API

    @property
    def output_layer(self) -> Layer | None:
        """This widget's current output layer, if it is still in the viewer."""
        layers = self._live.layers() if self._live is not None else []
        return layers[0] if layers else None

    @property
    def live(self) -> LiveFilter | None:
        """The live filter behind the current output (``None`` before the first run)."""
        return self._live

    @property
    def busy(self) -> bool:
        """True while a preview is pending or frames are still being computed."""
        return self._pending or (self._live is not None and self._live.busy)

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
        self._pending = False
        layer = self._image.value
        problem = input_problem(layer) if layer is not None else self._no_image_reason()
        if problem:
            self._set_status(problem)
            return None
        if new_layer is None:
            new_layer = bool(self._new_layer.value)
        live = self._live_for(layer, new_layer=new_layer)
        spec = OutputSpec(self.operation, self.parameters(), (str(self._colormap.value),))
        try:
            (layers,) = live.update(layer, [spec], wait=wait)
        except ValueError as error:
            self._set_status(f"{self.operation.title}: {error}")
            return None
        return layers[0]

    # ------------------------------------------------------------------ internals

    def _image_choices(self, _widget=None):
        return image_layer_choices(self.viewer, exclude=self._owns)

    def _owns(self, layer) -> bool:
        lives = [*self._retired, *([self._live] if self._live is not None else [])]
        return any(live.owns(layer) for live in lives)

    def _no_image_reason(self) -> str:
        active = self.viewer.layers.selection.active
        if active is not None:
            reason = input_problem(active)
            if reason:
                return reason
        return input_problem(None)

    def _on_parameter_changed(self, _value=None) -> None:
        hub = viewer_hub(self.viewer)
        for name in self.operation.intensity_parameters:
            hub.publish(f"{self.operation.key}.{name}", self.controls[name].value)
        if not self._auto.value:
            return
        if self._throttled:
            self._pending = True
            return
        self._throttled = True
        self._timer.start()
        self.run(new_layer=False)

    def _apply_pending(self) -> None:
        self._throttled = False
        if self._pending and qt_alive(self):
            self.run(new_layer=False)

    def _on_run_clicked(self, _value=None) -> None:
        self.run()

    def _on_colormap_changed(self, name: str) -> None:
        if self._live is not None:
            self._live.set_colormap(str(name))

    def _on_image_changed(self, _value=None) -> None:
        layer = self._image.value
        problem = input_problem(layer) if layer is not None else None
        self._set_status(problem or "")
        if layer is None or problem:
            return
        low, high = data_range(layer)
        integer = layer.data.dtype.kind in "biu"
        for name in self.operation.intensity_parameters:
            parameter = self.operation.parameter(name)
            self.controls[name].set_range(*parameter.data_range(low, high), integer=integer)

    def _live_for(self, layer, *, new_layer: bool) -> LiveFilter:
        live = self._live
        if live is not None and live.layers() and (new_layer or live.input_layer is not layer):
            self._retire(live)
            live = None
        if live is None:
            live = LiveFilter(self.viewer, description=f"napari-xray: {self.operation.title}")
            live.status.connect(self._set_status)
            self._live = live
        return live

    def _retire(self, live: LiveFilter) -> None:
        """Stop updating ``live``'s layers; a running stack computation still completes."""
        live.status.disconnect(self._set_status)
        if self._live is live:
            self._live = None
        live.settle()
        if live.busy:
            self._retired.append(live)

            def _done(_generation=None, live=live):
                live.close()
                if live in self._retired:
                    self._retired.remove(live)

            live.finished.connect(_done)
        else:
            live.close()


def _closer(widget: OperationWidget):
    """A callback for ``destroyed`` that stops the widget's work without keeping it alive."""
    import weakref

    ref = weakref.ref(widget)

    def _on_destroyed(*_args) -> None:
        owner = ref()
        if owner is None:
            return
        owner._pending = False
        for live in [owner._live, *owner._retired]:
            if live is None:
                continue
            try:
                live.close()
            except Exception:  # noqa: BLE001 - a Qt slot at teardown must never raise
                pass

    return _on_destroyed


# --------------------------------------------------------------------------- generated classes


def _class_name(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_")) + "Widget"


def _make_widget_class(operation: Operation) -> type[OperationWidget]:
    def __init__(self, napari_viewer: napari.Viewer) -> None:  # noqa: N807
        OperationWidget.__init__(self, napari_viewer, operation.key)

    __init__.__doc__ = f"The {operation.title} widget for ``napari_viewer``."
    return type(
        _class_name(operation.key),
        (OperationWidget,),
        {
            "__init__": __init__,
            "__module__": __name__,
            "__doc__": f"{operation.title}: {operation.description}\n\n"
            "Generated from the engine's description; see :class:`OperationWidget`.",
            "operation_key": operation.key,
        },
    )


#: The generated widget class of each operation, by operation key.
WIDGET_CLASSES: dict[str, type[OperationWidget]] = {
    key: _make_widget_class(operation) for key, operation in OPERATIONS.items()
}
for _cls in WIDGET_CLASSES.values():
    globals()[_cls.__name__] = _cls
    __all__.append(_cls.__name__)
del _cls


def make_widget(viewer: napari.Viewer, key: str) -> OperationWidget:
    """The widget of operation ``key`` for ``viewer`` (not yet docked).

    Raises
    ------
    KeyError
        ``key`` is not an operation (the message lists the valid keys).
    """
    get_operation(key)
    return WIDGET_CLASSES[key](viewer)


# --------------------------------------------------------------------------- console


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
    colormap = colormap or operation.colormaps[0]
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
    live = hub.console.get(slot)
    if live is not None and (new_layer or not live.layers() or live.input_layer is not layer):
        live.settle()
        if live.busy and new_layer:
            live.finished.connect(lambda _g=None, live=live: live.close())
        else:
            live.close()
        live = None
    if live is None:
        live = LiveFilter(viewer, description=f"napari-xray: {operation.title}")
        hub.console[slot] = live
    spec = OutputSpec(operation, dict(params), (colormap,))
    (layers,) = live.update(layer, [spec], wait=wait)
    return layers[0]
