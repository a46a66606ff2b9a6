"""The one description of every operation: name, title, parameters, ranges, colormaps.

Widgets, menus, the command line, the headless comparison and the Dask batch
are all generated from :data:`OPERATIONS`; adding an operation is one entry here
(plus its pure function in :mod:`napari_xray.engine.filters`), never a new widget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_xray.engine import filters

__all__ = [
    "COMPARISON",
    "OPERATIONS",
    "ComparisonPanel",
    "Operation",
    "Parameter",
    "get_operation",
    "run_operation",
]


@dataclass(frozen=True)
class Parameter:
    """One parameter of an operation, with everything a widget or CLI needs to offer it.

    ``kind`` is ``float``, ``int``, ``bool`` or ``str``; ``choices`` lists the
    allowed strings for a ``str`` parameter; ``minimum``/``maximum``/``step``
    bound a number. ``optional`` numbers may be ``None`` (the function then
    picks its documented default).
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

    @property
    def title(self) -> str:
        """The label shown to people (the name with spaces, capitalised, if none was given)."""
        return self.label or self.name.replace("_", " ").capitalize()

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


@dataclass(frozen=True)
class Operation:
    """An engine operation: its pure function and how to present its result.

    ``colormaps`` lists the tutorial's colormaps for the result, the first being
    the default. ``key`` is the short name used on the command line, in layer
    names and as the Zarr array name.
    """

    key: str
    title: str
    function: Callable[..., np.ndarray]
    parameters: tuple[Parameter, ...] = ()
    colormaps: tuple[str, ...] = ("gray",)
    description: str = ""

    @property
    def intensity_parameters(self) -> tuple[str, ...]:
        """Names of the parameters in the input's units (those with a ``data_range``)."""
        return tuple(p.name for p in self.parameters if p.data_range is not None)

    def defaults(self) -> dict[str, Any]:
        """The default value of every parameter, by name."""
        return {p.name: p.default for p in self.parameters}

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name``; raises ``KeyError`` listing the valid names."""
        for candidate in self.parameters:
            if candidate.name == name:
                return candidate
        valid = ", ".join(p.name for p in self.parameters) or "none"
        raise KeyError(f"{self.key} has no parameter {name!r}; its parameters are: {valid}")

    def resolve(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overridden by ``params``, each checked and converted.

        Raises ``KeyError`` for an unknown parameter, ``ValueError`` for a bad value.
        """
        values = self.defaults()
        for name, value in (params or {}).items():
            values[name] = self.parameter(name).coerce(value)
        return values

    def __call__(self, image, **params) -> np.ndarray:
        """Run the operation on ``image`` with ``params`` over the defaults."""
        return self.function(image, **self.resolve(params))

    def describe(self, params: Mapping[str, Any] | None = None) -> str:
        """A short text such as ``"LoG σ=1"`` naming the operation and non-default parameters."""
        values = self.resolve(params)
        shown = []
        for p in self.parameters:
            value = values[p.name]
            if p.kind is float and value is not None:
                shown.append(f"{p.name}={value:g}")
            elif p.kind is bool:
                if value != p.default:
                    shown.append(f"{p.name}={'on' if value else 'off'}")
            elif value is not None:
                shown.append(f"{p.name}={value}")
        return self.key + (f" {' '.join(shown)}" if shown else "")


_SIGMA_HELP = "Gaussian standard deviation in pixels"


def _sigma(default: float) -> Parameter:
    return Parameter("sigma", float, default, "σ", 0.1, filters.MAX_SIGMA, 0.1, help=_SIGMA_HELP)


def _gradient_range(low: float, high: float) -> tuple[float, float]:
    # A Sobel gradient magnitude reaches at most 4·√2 times the data's span.
    return 0.0, 4.0 * math.sqrt(2.0) * (high - low)


def _gradient_threshold(name: str, label: str, percent: int) -> Parameter:
    return Parameter(
        name,
        float,
        None,
        label,
        0.0,
        None,
        1.0,
        optional=True,
        help=f"gradient magnitude; default {percent}% of the dtype's max",
        data_range=_gradient_range,
    )


OPERATIONS: dict[str, Operation] = {
    op.key: op
    for op in (
        Operation(
            key="log",
            title="Laplacian of Gaussian",
            function=filters.laplace_of_gaussian,
            parameters=(_sigma(1.0),),
            colormaps=("gray",),
            description="Second-derivative edge response (scipy.ndimage.gaussian_laplace).",
        ),
        Operation(
            key="gradient",
            title="Gaussian gradient magnitude",
            function=filters.gaussian_gradient_magnitude,
            parameters=(_sigma(2.0),),
            colormaps=("gray",),
            description="Smoothed first-derivative magnitude "
            "(scipy.ndimage.gaussian_gradient_magnitude).",
        ),
        Operation(
            key="sobel",
            title="Sobel magnitude",
            function=filters.sobel_magnitude,
            parameters=(Parameter("normalize", bool, True, "Normalize to 0–255"),),
            colormaps=("gray", "CMRmap", "hot"),
            description="hypot of the Sobel derivatives along both image axes.",
        ),
        Operation(
            key="prewitt",
            title="Fourier-Prewitt magnitude",
            function=filters.fourier_prewitt,
            parameters=(
                _sigma(1.0),
                Parameter("normalize", bool, True, "Normalize to 0–255"),
            ),
            colormaps=("nipy_spectral", "prism", "terrain"),
            description="Gaussian smoothing in the Fourier domain, then the Prewitt "
            "magnitude (the tutorial's 'Canny' step, done right).",
        ),
        Operation(
            key="canny",
            title="Canny edges",
            function=filters.canny,
            parameters=(
                _sigma(2.0),
                _gradient_threshold("low_threshold", "Low threshold", 10),
                _gradient_threshold("high_threshold", "High threshold", 20),
            ),
            colormaps=("gray",),
            description="True Canny: smoothing, gradient, non-maximum suppression, hysteresis.",
        ),
        Operation(
            key="mask",
            title="Threshold mask",
            function=filters.threshold_mask,
            parameters=(
                Parameter(
                    "threshold",
                    float,
                    150.0,
                    "Threshold",
                    help="keep pixels above it",
                    data_range=lambda low, high: (low, high),
                ),
                Parameter("mode", str, "keep", "Mode", choices=("keep", "binary")),
            ),
            colormaps=("gray",),
            description="The tutorial's np.where masks: keep the pixels above a threshold.",
        ),
    )
}


def get_operation(key: str) -> Operation:
    """The operation called ``key`` (e.g. ``"sobel"``); raises ``KeyError`` listing valid keys."""
    try:
        return OPERATIONS[key]
    except KeyError:
        raise KeyError(
            f"unknown operation {key!r}; choose one of: {', '.join(OPERATIONS)}"
        ) from None


def run_operation(key: str, image, **params) -> np.ndarray:
    """Run operation ``key`` on ``image``: ``run_operation("log", stack, sigma=2)``.

    Parameters are checked against the operation's description first.
    """
    return get_operation(key)(image, **params)


@dataclass(frozen=True)
class ComparisonPanel:
    """One panel of the tutorial's side-by-side comparison."""

    title: str
    key: str | None  # None: the original image
    params: Mapping[str, Any] = field(default_factory=dict)
    colormap: str = "gray"


#: The tutorial's comparison set, in its order: original, LoG, Gaussian
#: gradient, Sobel (gray and hot), Fourier-Prewitt, Canny, and both masks.
COMPARISON: tuple[ComparisonPanel, ...] = (
    ComparisonPanel("Original", None),
    ComparisonPanel("Laplacian of Gaussian (σ=1)", "log", {"sigma": 1.0}),
    ComparisonPanel("Gaussian gradient (σ=2)", "gradient", {"sigma": 2.0}),
    ComparisonPanel("Sobel", "sobel", {}, "gray"),
    ComparisonPanel("Sobel (hot)", "sobel", {}, "hot"),
    ComparisonPanel("Fourier-Prewitt (σ=1)", "prewitt", {"sigma": 1.0}, "nipy_spectral"),
    ComparisonPanel("Canny (σ=2)", "canny", {"sigma": 2.0}),
    ComparisonPanel("Mask > 150 (values)", "mask", {"threshold": 150.0, "mode": "keep"}),
    ComparisonPanel("Mask > 150 (binary)", "mask", {"threshold": 150.0, "mode": "binary"}),
)
