"""One parameter of an engine operation, described for people and programs alike.

A :class:`Parameter` says what a widget, the command line or the batch needs to
offer it: its kind, default, bounds and step, its choices, its help sentence,
whether it is in the input's intensity units, and how its value reads in a title.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Parameter"]


@dataclass(frozen=True)
class Parameter:
    """One parameter of an operation, with everything a widget or CLI needs to offer it.

    ``kind`` is ``float``, ``int``, ``bool`` or ``str``; ``choices`` lists the
    allowed strings for a ``str`` parameter; ``minimum``/``maximum``/``step``
    bound a number. ``optional`` numbers may be ``None`` (the function then
    picks its documented default; ``auto_value(dtype)`` says which value that
    is for an input of ``dtype``). ``help`` is a sentence for people (tooltips,
    ``--help``); ``log_scale`` numbers span orders of magnitude (a slider moves
    them by factors) and ``decimals`` is how finely people set them.
    """

    name: str
    kind: type
    default: Any
    label: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False
    help: str = ""
    #: For a number in the input's units: the useful range given the data's
    #: (min, max); widgets range their slider over it.
    data_range: Callable[[float, float], tuple[float, float]] | None = None
    choice_titles: Mapping[str, str] = field(default_factory=dict, hash=False)
    marks_threshold: bool = False
    #: For an optional number: the value the function uses for ``None``, given the
    #: input's dtype (e.g. Canny's 10 % of the dtype's maximum).
    auto_value: Callable[[np.dtype], float] | None = None
    log_scale: bool = False
    decimals: int | None = None

    @property
    def title(self) -> str:
        """The label shown to people (the name with spaces, capitalised, if none was given)."""
        return self.label or self.name.replace("_", " ").capitalize()

    def caption(self, value: Any) -> str:
        """How ``value`` reads in a title: ``"σ=1"``, ``"normalize off"``, ``"binary"``."""
        if self.kind is bool:
            return f"{self.name} {'on' if value else 'off'}"
        if self.kind is str:
            return self.choice_titles.get(value, str(value))
        return f"{self.title}={value:g}"

    def coerce(self, value: Any) -> Any:
        """Return ``value`` converted to this parameter's kind, or raise a ValueError saying why.

        Strings (from the command line) are parsed; numbers are range-checked.
        """
        if value is None or (isinstance(value, str) and value.lower() in ("none", "auto", "")):
            if self.optional:
                return None
            raise ValueError(f"{self.name} needs a value (default {self.default!r})")
        if self.kind is bool:
            if isinstance(value, str):
                lowered = value.lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(f"{self.name} must be true or false, got {value!r}")
            return bool(value)
        if self.kind is str:
            text = str(value)
            if self.choices and text not in self.choices:
                raise ValueError(
                    f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}"
                )
            return text
        try:
            number = self.kind(float(value)) if self.kind is int else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name} must be a number, got {value!r}") from None
        if self.minimum is not None and number < self.minimum:
            raise ValueError(f"{self.name}={number:g} is below its minimum {self.minimum:g}")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"{self.name}={number:g} is above its maximum {self.maximum:g}")
        return number
