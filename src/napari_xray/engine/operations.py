"""Every operation napari-xray offers, described once in :data:`OPERATIONS`.

An :class:`Operation` holds its pure function, its
:class:`~napari_xray.engine.parameters.Parameter` s (kinds, ranges, defaults, help)
and how its result is presented (layer type, colormaps,
contrast limits, captions). :data:`COMPARISON` lists the tutorial's side-by-side
panels; :data:`HISTOGRAM_THRESHOLD` names the parameter that intensity histograms
mark with a line. Widgets, the command line, the comparison and the batch read
these descriptions.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from napari_xray.engine import filters
from napari_xray.engine.parameters import Parameter

__all__ = [
    "COMPARISON",
    "HISTOGRAM_THRESHOLD",
    "OPERATIONS",
    "ComparisonPanel",
    "MarkedThreshold",
    "Operation",
    "Parameter",
    "Presentation",
    "get_operation",
    "run_operation",
]

#: Percentiles of a float result mapped to the ends of the colormap by default: edge
#: maps have a few extreme pixels (burnt-in markers, the border) that would otherwise
#: squash everything else into one gray.
DISPLAY_PERCENTILES = (0.5, 99.5)
#: About this many pixels of a result are sampled for its contrast limits.
_SAMPLE_PIXELS = 1 << 16


class Presentation(NamedTuple):
    """How a result is shown: the napari layer type and the dtype of the layer's data."""

    layer_type: str  # "image" or "labels"
    dtype: np.dtype


@dataclass(frozen=True)
class Operation:
    """An engine operation: its pure function and how to present its result.

    ``key`` is the short name used on the command line and as the Zarr array
    name. ``colormaps`` lists the tutorial's colormaps for the result, the first
    being the default. ``short_title`` names the operation in captions (a format
    string over the parameter values, e.g. ``"Mask > {threshold:g}"``; default
    ``title``); ``abbreviation`` names it in layer names (default
    ``short_title``). ``contrast_percentiles`` are the percentiles of a float
    result mapped to the ends of the colormap (``None``: its min and max).
    ``rules`` check values that are fine one by one but not together: each takes
    the effective values (see :meth:`effective_values`) and returns a sentence
    saying what to change, or ``None``.
    """

    key: str
    title: str
    function: Callable[..., np.ndarray]
    parameters: tuple[Parameter, ...] = ()
    colormaps: tuple[str, ...] = ("gray",)
    description: str = ""
    short_title: str = ""
    contrast_percentiles: tuple[float, float] | None = DISPLAY_PERCENTILES
    abbreviation: str = ""
    rules: tuple[Callable[[Mapping[str, Any]], str | None], ...] = ()

    @property
    def default_colormap(self) -> str:
        """The colormap a result is shown in unless another is chosen."""
        return self.colormaps[0]

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

    def _shown(self, values: Mapping[str, Any]) -> Iterator[tuple[Parameter, Any]]:
        """The parameters worth naming, with their values: set ones, booleans off their default."""
        for p in self.parameters:
            value = values[p.name]
            if value is None or (p.kind is bool and value == p.default):
                continue
            yield p, value

    def describe(self, params: Mapping[str, Any] | None = None) -> str:
        """A short text such as ``"log sigma=1"`` naming the operation and its parameters.

        Numbers and choices are always named; booleans only when off their default.
        """
        shown = []
        for p, value in self._shown(self.resolve(params)):
            if p.kind is float:
                shown.append(f"{p.name}={value:g}")
            elif p.kind is bool:
                shown.append(f"{p.name}={'on' if value else 'off'}")
            else:
                shown.append(f"{p.name}={value}")
        return self.key + (f" {' '.join(shown)}" if shown else "")

    def caption(self, params: Mapping[str, Any] | None = None, colormap: str | None = None) -> str:
        """A title for people: ``"Laplacian of Gaussian (σ=1)"``, ``"Mask > 150 (binary)"``.

        ``short_title`` filled in with the parameter values, then in parentheses
        the other parameters :meth:`describe` names and ``colormap`` unless it is
        the default one.
        """
        values = self.resolve(params)
        template = self.short_title or self.title
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        extras = [p.caption(value) for p, value in self._shown(values) if p.name not in used]
        if colormap is not None and colormap != self.default_colormap:
            extras.append(colormap)
        text = template.format(**values)
        return text + (f" ({', '.join(extras)})" if extras else "")

    def layer_name(self, params: Mapping[str, Any] | None = None) -> str:
        """The operation first, then its parameters, for a layer name: ``"LoG σ=3"``.

        ``abbreviation`` (else ``short_title``, else ``title``) filled in with the
        parameter values, then the other parameters :meth:`caption` names:
        ``"Canny σ=2"``, ``"Mask > 150 binary"``, ``"Sobel normalize off"``.
        """
        values = self.resolve(params)
        template = self.abbreviation or self.short_title or self.title
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        extras = [p.caption(value) for p, value in self._shown(values) if p.name not in used]
        text = template.format(**values)
        return text + (f" {', '.join(extras)}" if extras else "")

    def effective_values(
        self, params: Mapping[str, Any] | None = None, dtype=None
    ) -> dict[str, Any]:
        """:meth:`resolve`, with each optional number on auto replaced by the value used.

        ``dtype`` is the input's (needed for ``auto_value``; default uint8).
        """
        dtype = np.dtype(np.uint8 if dtype is None else dtype)
        values = self.resolve(params)
        for p in self.parameters:
            if values[p.name] is None and p.auto_value is not None:
                values[p.name] = float(p.auto_value(dtype))
        return values

    def problem(self, params: Mapping[str, Any] | None = None, dtype=None) -> str | None:
        """Why these parameters cannot be used together on ``dtype`` input, or ``None``.

        A sentence for people that says what to change (from :attr:`rules`);
        a single bad value raises as in :meth:`resolve`.
        """
        values = self.effective_values(params, dtype)
        for rule in self.rules:
            message = rule(values)
            if message:
                return message
        return None

    def presentation(self, dtype) -> Presentation:
        """How a result of ``dtype`` is shown.

        Bool results (edges, binary masks) as labels 0/1 in uint8; anything else
        as an image of its own dtype.
        """
        dtype = np.dtype(dtype)
        if dtype.kind == "b":
            return Presentation("labels", np.dtype(np.uint8))
        return Presentation("image", dtype)

    def contrast_limits(
        self, result: np.ndarray, low: float, high: float
    ) -> tuple[tuple[float, float], tuple[float, float]]:
        """Contrast limits, and the contrast slider's range, for an image result.

        Parameters
        ----------
        result : numpy.ndarray
            A frame or stack the operation returned.
        low, high : float
            Its exact minimum and maximum (already known to the caller).

        Returns
        -------
        limits : (float, float)
            Float results: the :attr:`contrast_percentiles` of an evenly strided
            sample (about 65k pixels, ~1 ms); integer results, a sample without
            spread, or no percentiles: ``(low, high)``.
        span : (float, float)
            ``(low, high)``; a flat result gets a unit span.
        """
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high)):
            low, high = 0.0, 1.0
        span = (low, high) if high > low else (low, low + 1.0)
        if self.contrast_percentiles is None or result.dtype.kind != "f" or not high > low:
            return span, span
        lower, upper = np.percentile(_subsample(result), self.contrast_percentiles)
        if not upper > lower:
            return span, span
        return (float(lower), float(upper)), span


def _subsample(result: np.ndarray) -> np.ndarray:
    """An evenly strided sample of about ``_SAMPLE_PIXELS`` pixels of ``result``."""
    height, width = result.shape[-2:]
    frames = result.size // max(1, height * width)
    stride = max(1, int(math.sqrt(frames * height * width / _SAMPLE_PIXELS)))
    return result[..., ::stride, ::stride]


def _normalize() -> Parameter:
    return Parameter("normalize", bool, True, "Normalize to 0–255", help=_NORMALIZE_HELP)


def _sigma(default: float) -> Parameter:
    return Parameter(
        "sigma",
        float,
        default,
        "σ",
        0.1,
        filters.MAX_SIGMA,
        0.1,
        help="Width of the Gaussian smoothing, in pixels: larger σ ignores finer detail "
        "and finds broader edges.",
        log_scale=True,
        decimals=2,
    )


def _gradient_range(low: float, high: float) -> tuple[float, float]:
    # A Sobel gradient magnitude reaches at most 4·√2 times the data's span.
    return 0.0, 4.0 * math.sqrt(2.0) * (high - low)


def _gradient_threshold(name: str, label: str, percent: int, role: str) -> Parameter:
    return Parameter(
        name,
        float,
        None,
        label,
        0.0,
        None,
        1.0,
        optional=True,
        help=f"{role} (gradient magnitude, in the image's intensity units). With auto it "
        f"is {percent} % of the image type's maximum: {2.55 * percent:g} for 8-bit images, "
        f"{percent / 100:g} for float images.",
        data_range=_gradient_range,
        auto_value=lambda dtype, fraction=percent / 100: fraction * filters.dtype_max(dtype),
    )


def _thresholds_in_order(values: Mapping[str, Any]) -> str | None:
    low, high = values["low_threshold"], values["high_threshold"]
    if low is not None and high is not None and low > high:
        return (
            f"The low threshold ({low:g}) is above the high threshold ({high:g}); "
            "lower it or raise the high threshold."
        )
    return None


_NORMALIZE_HELP = (
    "Stretch each frame's result to 0–255 (as the tutorial shows it); off keeps the raw "
    "gradient magnitudes."
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
            abbreviation="LoG",
        ),
        Operation(
            key="gradient",
            title="Gaussian gradient magnitude",
            function=filters.gaussian_gradient_magnitude,
            parameters=(_sigma(2.0),),
            colormaps=("gray",),
            description="Smoothed first-derivative magnitude "
            "(scipy.ndimage.gaussian_gradient_magnitude).",
            short_title="Gaussian gradient",
        ),
        Operation(
            key="sobel",
            title="Sobel magnitude",
            function=filters.sobel_magnitude,
            parameters=(_normalize(),),
            colormaps=("gray", "CMRmap", "hot"),
            description="hypot of the Sobel derivatives along both image axes.",
            short_title="Sobel",
        ),
        Operation(
            key="prewitt",
            title="Fourier-Prewitt magnitude",
            function=filters.fourier_prewitt,
            parameters=(
                _sigma(1.0),
                _normalize(),
            ),
            colormaps=("nipy_spectral", "prism", "terrain"),
            description="Gaussian smoothing in the Fourier domain, then the Prewitt "
            "magnitude (the tutorial's 'Canny' step).",
            short_title="Fourier-Prewitt",
        ),
        Operation(
            key="canny",
            title="Canny edges",
            function=filters.canny,
            parameters=(
                _sigma(2.0),
                _gradient_threshold(
                    "low_threshold",
                    "Low threshold",
                    10,
                    "Weak edge pixels are kept only where they touch a strong edge; "
                    "gradients below this are never edges",
                ),
                _gradient_threshold(
                    "high_threshold",
                    "High threshold",
                    20,
                    "Gradients above this are strong edges that start an edge line",
                ),
            ),
            colormaps=("gray",),
            description="True Canny: smoothing, gradient, non-maximum suppression, hysteresis.",
            short_title="Canny",
            rules=(_thresholds_in_order,),
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
                    help="Pixels brighter than this are kept (in the image's intensity "
                    "units); the others become 0.",
                    data_range=lambda low, high: (low, high),
                    marks_threshold=True,
                ),
                Parameter(
                    "mode",
                    str,
                    "keep",
                    "Mode",
                    choices=("keep", "binary"),
                    choice_titles={"keep": "values"},
                    help="keep: the kept pixels keep their values; binary: a mask "
                    "(1 where kept, shown as labels).",
                ),
            ),
            colormaps=("gray",),
            description="The tutorial's np.where masks: keep the pixels above a threshold.",
            short_title="Mask > {threshold:g}",
        ),
    )
}

#: Named selections of operations (``batch --filters fast``): ``edges`` the five edge
#: filters without the mask; ``fast`` the three cheapest a 1024² frame on one core
#: (LoG, Sobel, mask: the README's timings), storing half the bytes of all six.
PRESETS: dict[str, tuple[str, ...]] = {
    "all": tuple(OPERATIONS),
    "edges": ("log", "gradient", "sobel", "prewitt", "canny"),
    "fast": ("log", "sobel", "mask"),
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
    """One panel of the tutorial's side-by-side comparison.

    ``key`` names the operation (``None``: the original image); ``colormap``
    defaults to the operation's (gray for the original).
    """

    key: str | None
    params: Mapping[str, Any] = field(default_factory=dict)
    colormap: str | None = None

    def __post_init__(self) -> None:
        if self.colormap is None:
            colormap = "gray" if self.key is None else get_operation(self.key).default_colormap
            object.__setattr__(self, "colormap", colormap)

    def resolved_params(self) -> dict[str, Any]:
        """Every parameter of the panel's operation: the panel's values over the defaults."""
        return {} if self.key is None else get_operation(self.key).resolve(self.params)

    @property
    def signature(self) -> tuple:
        """The operation key and resolved parameters; panels that share it share one result."""
        return (self.key, tuple(sorted(self.resolved_params().items())))

    @property
    def title(self) -> str:
        """The panel's title from its operation, parameters and colormap: ``"Sobel (hot)"``."""
        if self.key is None:
            return "Original"
        return get_operation(self.key).caption(self.params, self.colormap)


#: The tutorial's comparison set, in its order: original, LoG, Gaussian
#: gradient, Sobel (gray and hot), Fourier-Prewitt, Canny, and both masks.
COMPARISON: tuple[ComparisonPanel, ...] = (
    ComparisonPanel(None),
    ComparisonPanel("log", {"sigma": 1.0}),
    ComparisonPanel("gradient", {"sigma": 2.0}),
    ComparisonPanel("sobel"),
    ComparisonPanel("sobel", colormap="hot"),
    ComparisonPanel("prewitt", {"sigma": 1.0}),
    ComparisonPanel("canny", {"sigma": 2.0}),
    ComparisonPanel("mask", {"threshold": 150.0, "mode": "keep"}),
    ComparisonPanel("mask", {"threshold": 150.0, "mode": "binary"}),
)


@dataclass(frozen=True)
class MarkedThreshold:
    """The operation parameter that intensity histograms draw as a vertical line."""

    operation: Operation
    parameter: Parameter

    @property
    def label(self) -> str:
        """The line's legend text before its value: ``"mask threshold"``."""
        return f"{self.operation.key} {self.parameter.name}"

    @property
    def default(self) -> float:
        """The parameter's default value."""
        return float(self.parameter.default)

    def value_in(self, panels: Sequence[ComparisonPanel]) -> float:
        """The value the first of ``panels`` with this operation gives it (else the default)."""
        for panel in panels:
            if panel.key == self.operation.key:
                return float(self.operation.resolve(panel.params)[self.parameter.name])
        return self.default


def _marked_threshold() -> MarkedThreshold:
    marked = [
        MarkedThreshold(operation, parameter)
        for operation in OPERATIONS.values()
        for parameter in operation.parameters
        if parameter.marks_threshold
    ]
    if len(marked) != 1:
        raise RuntimeError(f"exactly one parameter must mark the threshold, not {len(marked)}")
    return marked[0]


#: The parameter intensity histograms mark with a line: the mask's threshold.
HISTOGRAM_THRESHOLD: MarkedThreshold = _marked_threshold()
