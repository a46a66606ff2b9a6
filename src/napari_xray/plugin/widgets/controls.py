"""The form control of one engine parameter, built from its description.

* numbers with both bounds: a slider with an editable readout (min/max/step from
  the parameter); numbers in the input's intensity units are ranged over the
  chosen layer's value range (:meth:`ParameterControl.set_range`);
* optional numbers (``None`` = the engine's documented default): the number plus
  an **auto** checkbox; ticked means ``None`` and disables the number;
* booleans: a checkbox; strings with choices: a drop-down.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSlider,
    FloatSpinBox,
    Slider,
    SpinBox,
)

from napari_xray.engine.operations import Parameter

__all__ = ["ParameterControl"]

#: Range of an intensity slider before any layer is chosen (8-bit images).
_DEFAULT_INTENSITY_RANGE = (0.0, 255.0)
_UNBOUNDED = 1e9


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
