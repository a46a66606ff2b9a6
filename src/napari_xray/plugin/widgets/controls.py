"""The form control of one engine parameter, built from its description.

* numbers that span orders of magnitude (``log_scale``, e.g. σ): a slider that
  moves them by factors, beside a spin box that shows and takes the exact value
  (rounded to the parameter's ``decimals``);
* other numbers with both bounds: a slider with an editable readout; numbers in
  the input's intensity units are re-ranged to each chosen layer
  (:meth:`ParameterControl.fit_input`);
* optional numbers (``None`` = the engine's documented default): the number plus
  an **auto** checkbox; ticked means ``None``, disables the number and shows the
  value the engine will use for the chosen image, which is where the number
  starts when auto is unticked;
* booleans: a checkbox; strings with choices: a drop-down.

Every control carries the parameter's help text as its tooltip.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
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
#: Positions of a log-scale slider (σ from 0.1 to 64: about 0.65 % per position).
_LOG_POSITIONS = 1000


def _nice_step(span: float) -> float:
    """A power of ten about a thousandth of ``span`` (arrow-key step of a float slider)."""
    if not span > 0 or not math.isfinite(span):
        return 1.0
    return 10.0 ** math.floor(math.log10(span / 1000.0))


def _decimals(step: float) -> int:
    """Decimals needed to show multiples of ``step``."""
    return max(0, -math.floor(math.log10(step))) if step > 0 else 2


def _places(value: float, most: int = 6) -> int:
    """The fewest decimals (at most ``most``) that show ``value`` exactly."""
    for places in range(most + 1):
        if math.isclose(round(value, places), value, rel_tol=0, abs_tol=10.0 ** -(most + 1)):
            return places
    return most


class _LogNumber:
    """A log-scale slider beside a spin box, for a positive number spanning decades.

    The spin box holds the value (rounded to ``decimals``, with Qt's adaptive
    decimal steps: 0.01 below 1, 0.1 up to 10, 1 above); the slider moves it by
    equal factors.
    """

    def __init__(self, parameter: Parameter, name: str, tooltip: str | None) -> None:
        self.low, self.high = float(parameter.minimum), float(parameter.maximum)
        decimals = 2 if parameter.decimals is None else parameter.decimals
        self.spin = FloatSpinBox(
            name="value", min=self.low, max=self.high, value=parameter.default,
            step=None, tooltip=tooltip,
        )
        self.spin.native.setDecimals(decimals)
        self.spin.value = parameter.default
        self.slider = Slider(
            name="slider", min=0, max=_LOG_POSITIONS, readout=False, tooltip=tooltip,
            value=self._position(parameter.default),
        )
        from qtpy.QtWidgets import QSlider

        self.slider.native.findChild(QSlider).setPageStep(_LOG_POSITIONS // 20)
        self.decimals = decimals
        self.widget = Container(
            name=name, label=parameter.title, layout="horizontal", labels=False,
            widgets=[self.slider, self.spin], tooltip=tooltip,
        )
        self.widget.margins = (0, 0, 0, 0)
        self._from_slider = False
        self.slider.changed.connect(self._on_slider)
        self.spin.changed.connect(self._on_spin)

    def _position(self, value: float) -> int:
        fraction = math.log(value / self.low) / math.log(self.high / self.low)
        return int(round(min(max(fraction, 0.0), 1.0) * _LOG_POSITIONS))

    def _value_at(self, position: int) -> float:
        value = self.low * (self.high / self.low) ** (position / _LOG_POSITIONS)
        return min(max(round(value, self.decimals), self.low), self.high)

    def _on_slider(self, position: int) -> None:
        self._from_slider = True
        try:
            self.spin.value = self._value_at(int(position))
        finally:
            self._from_slider = False

    def _on_spin(self, value: float) -> None:
        if self._from_slider:
            return  # the slider is where the user put it
        with self.slider.changed.blocked():
            self.slider.value = self._position(float(value))

    @property
    def value(self) -> float:
        return round(float(self.spin.value), self.decimals)

    @value.setter
    def value(self, value: float) -> None:
        self.spin.value = round(float(value), self.decimals)

    @property
    def enabled(self) -> bool:
        return self.widget.enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self.slider.enabled = self.spin.enabled = value


class ParameterControl:
    """The magicgui control of one engine :class:`Parameter`.

    ``widget`` goes into the form; ``value`` reads/writes the parameter's value
    (``None`` for an optional number set to auto); ``changed`` is a psygnal
    signal emitted on every user or programmatic change of the value.
    ``slider`` is the Qt-facing slider of a number (``None`` for other kinds).
    """

    def __init__(self, parameter: Parameter, *, intensity: bool = False) -> None:
        self.parameter = parameter
        self.intensity = intensity
        self.slider = None
        self._auto: CheckBox | None = None
        self._number = None
        self._log: _LogNumber | None = None
        self._decimals: int | None = parameter.decimals
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
        if parameter.log_scale and parameter.minimum and parameter.maximum:
            self._log = _LogNumber(
                parameter, "value" if parameter.optional else parameter.name, tooltip
            )
            self._number = self._log.spin
            self.slider = self._log.slider
            number_widget = self._log.widget
        else:
            self._number = number_widget = self._make_number(parameter, tooltip)
            if isinstance(self._number, (FloatSlider, Slider)):
                self.slider = self._number
        if not parameter.optional:
            self.widget = number_widget
            if self._log is not None:
                self.changed = self._log.spin.changed
            else:
                self.changed = self.widget.changed
            _fill_tooltips(self.widget, tooltip)
            return
        self._auto = CheckBox(
            name="auto", text="auto", value=parameter.default is None,
            tooltip=_auto_tooltip(parameter),
        )
        self._set_number_enabled(not self._auto.value)
        self.widget = Container(
            name=parameter.name, label=parameter.title, layout="horizontal", labels=False,
            widgets=[number_widget, self._auto], tooltip=tooltip,
        )
        self.widget.margins = (0, 0, 0, 0)
        _fill_tooltips(self.widget, tooltip)
        self._auto.changed.connect(self._on_auto)
        self.changed = self.widget.changed
        self.show_auto_value(np.uint8)

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

    def _set_number_enabled(self, enabled: bool) -> None:
        target = self._log if self._log is not None else self._number
        target.enabled = enabled

    def _on_auto(self, auto: bool) -> None:
        # The number already shows the value auto stands for: unticking starts from it.
        self._set_number_enabled(not auto)

    @property
    def auto(self) -> bool:
        """True while an optional number is on auto (the engine's default)."""
        return self._auto is not None and bool(self._auto.value)

    @property
    def number_value(self) -> float | None:
        """The number on display (on auto: the value the engine will use); None if no number."""
        if self._log is not None:
            return self._log.value
        if self._number is None:
            return None
        value = float(self._number.value)
        if self.parameter.kind is int:
            return int(round(value))
        return round(value, self._decimals) if self._decimals is not None else value

    @property
    def value(self) -> Any:
        """The parameter's current value (``None`` for an optional number on auto)."""
        if self.auto:
            return None
        if self._number is not None:
            return self.number_value
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
                raise ValueError(f"{self.parameter.title} needs a value")
            self._set_number(value)
        else:
            self.widget.value = value

    def _set_number(self, value: float) -> None:
        target = self._log if self._log is not None else self._number
        try:
            target.value = value
        except ValueError:
            low, high = self._number.range
            raise ValueError(
                f"{self.parameter.title} must lie between {low:g} and {high:g} for this "
                f"image, not {value:g}."
            ) from None

    def show_auto_value(self, dtype) -> None:
        """On auto, show the value the engine uses for input of ``dtype`` (no change emitted)."""
        auto_value = self.parameter.auto_value
        if not self.auto or auto_value is None or self._number is None:
            return
        value = float(auto_value(np.dtype(dtype)))
        number = self._number
        if self.parameter.kind is float:
            self._decimals = max(self._decimals or 0, _places(value))
            _set_readout_decimals(number, self._decimals)
        with number.changed.blocked(), self.widget.changed.blocked():
            if hasattr(number, "range"):
                low, high = number.range
                if value > high:
                    number.max = value
                elif value < low:
                    number.min = value
            self._set_number(value)

    def fit_input(self, low: float, high: float, dtype) -> None:
        """Adapt to a newly chosen input whose values span ``low``..``high``, without emitting.

        An intensity control is re-ranged over the parameter's ``data_range`` of the
        input; its value becomes the parameter's default when it still is the
        default and the default lies in the new range, else it keeps its relative
        position in the range. On auto, the number shows the engine's value for
        ``dtype``.
        """
        dtype = np.dtype(dtype)
        if self.intensity and self.parameter.data_range is not None:
            new_low, new_high = self.parameter.data_range(low, high)
            self.set_range(new_low, new_high, integer=dtype.kind in "biu")
        self.show_auto_value(dtype)

    def set_range(self, low: float, high: float, *, integer: bool = False) -> None:
        """Range an intensity control over ``low``..``high`` without emitting a change.

        The parameter's own bounds still apply; the value is chosen as
        :meth:`fit_input` says.
        """
        number = self._number
        if number is None or not hasattr(number, "range") or self._log is not None:
            return
        p = self.parameter
        low = low if p.minimum is None else max(low, p.minimum)
        high = high if p.maximum is None else min(high, p.maximum)
        if not high > low:
            high = low + 1.0
        old_low, old_high = number.range
        old_value = float(number.value)
        step = 1.0 if integer and high - low >= 20 else _nice_step(high - low)
        if p.kind is float:
            self._decimals = _decimals(step)
        default = p.default
        if (
            default is not None
            and math.isclose(old_value, default, rel_tol=1e-9, abs_tol=step / 2)
            and low <= default <= high
        ):
            value = float(default)
        elif (old_low, old_high) == (low, high):
            value = old_value
        else:
            fraction = (old_value - old_low) / (old_high - old_low) if old_high > old_low else 0
            value = low + min(max(fraction, 0.0), 1.0) * (high - low)
        if p.kind is float:
            value = round(value, self._decimals)
        with number.changed.blocked(), self.widget.changed.blocked():
            number.range = (low, high)
            number.step = step
            number.value = min(max(value, low), high)
            _set_readout_decimals(number, self._decimals)


def _fill_tooltips(widget, tooltip: str | None) -> None:
    """Give ``tooltip`` to ``widget``'s Qt widget and every part of it that has none.

    magicgui puts a slider's tooltip on the slider only, not on its readout.
    """
    if not tooltip:
        return
    from qtpy.QtWidgets import QWidget

    root = widget.native
    for native in [root, *root.findChildren(QWidget)]:
        if not native.toolTip():
            native.setToolTip(tooltip)


def _auto_tooltip(parameter: Parameter) -> str:
    """The tooltip of an optional number's **auto** checkbox."""
    text = "Ticked: the engine's default, shown (greyed) in the box; untick to set your own."
    return f"{text}\n{parameter.help}" if parameter.help else text


def _set_readout_decimals(number, decimals: int | None) -> None:
    """Show ``decimals`` decimals in a float slider's editable readout."""
    if decimals is None:
        return
    from qtpy.QtWidgets import QDoubleSpinBox

    for readout in number.native.findChildren(QDoubleSpinBox):
        readout.setDecimals(max(decimals, 0))

