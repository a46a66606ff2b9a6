"""Measurements as files and figures: line profiles (a plot and a CSV of every layer's
values along the line) and region statistics (a CSV), as ``compare --line`` and the
Line profile and ROI statistics docks write them.

Files are written beside their target and renamed into place, so a failed export
never leaves half a file behind.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from napari_xray.io.paths import write_replacing

__all__ = [
    "ROI_COLUMNS",
    "draw_profiles",
    "normalised",
    "signed",
    "zero_level",
    "write_profile_csv",
    "write_profile_png",
    "write_roi_csv",
]

#: The columns of a region-statistics table, in order (see ``write_roi_csv``).
ROI_COLUMNS = ("roi", "shape_type", "layer", "frame", "count", "area_px", "area_mm2",
               "mean", "std", "min", "max", "median")  # fmt: skip


def normalised(values: np.ndarray) -> np.ndarray:
    """``values`` scaled to their own range, 0 to 1 (all zeros when they are flat; NaN
    stays NaN, a gap in the curve)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = _range(values)
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _range(values: np.ndarray) -> tuple[float, float]:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


def signed(values: np.ndarray) -> bool:
    """Whether a profile crosses zero (then its zero level is drawn: the LoG's edges)."""
    low, high = _range(values)
    return low < 0 < high


def zero_level(values: np.ndarray, scaled: bool) -> float:
    """Where a profile's zero lies on its plot: 0, or its place in the scaled range."""
    if not scaled:
        return 0.0
    low, high = _range(values)
    return -low / (high - low)


def draw_profiles(
    figure,
    distance: np.ndarray,
    columns: Mapping[str, np.ndarray],
    unit: str,
    *,
    scaled: bool = True,
    title: str | None = None,
) -> dict:
    """Draw every column's profile on ``figure`` (a matplotlib Figure, cleared first).

    With ``scaled``, one plot holds every profile scaled to its own range (0–1);
    otherwise each profile gets its own plot, in its own units, one above the
    other on a shared distance axis. A profile that crosses zero (a Laplacian of
    Gaussian) has its zero level drawn dotted in its colour, so that its zero
    crossings, the edges it marks, can be read off.

    Returns
    -------
    dict
        ``{name: (curve, zero line or None)}`` (matplotlib Line2D), for updating
        the plot in place.
    """
    figure.clear()
    lines = {}
    if scaled or not columns:
        axes = [figure.add_subplot(1, 1, 1)] * max(len(columns), 1)
    else:
        grid = figure.subplots(len(columns), 1, sharex=True, squeeze=False)
        axes = list(grid[:, 0])
    for axis, (name, values) in zip(axes, columns.items(), strict=False):
        shown = normalised(values) if scaled else np.asarray(values, dtype=np.float64)
        (curve,) = axis.plot(distance, shown, label=name, linewidth=1)
        zero = None
        if signed(values):
            zero = axis.axhline(zero_level(values, scaled), color=curve.get_color(),
                                linestyle=":", linewidth=0.9)  # fmt: skip
        lines[name] = (curve, zero)
        if not scaled:
            axis.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
            axis.tick_params(labelsize=7)
    axes[-1].set_xlabel(f"distance along the line ({unit})")
    if scaled:
        axes[0].set_ylabel("each layer scaled to its own range (0–1)", fontsize=8)
        if columns:
            axes[0].legend(fontsize=7, ncol=2 if len(columns) > 3 else 1)
    if title:
        axes[0].set_title(title, fontsize=9)
    return lines


def write_profile_png(
    path: str | os.PathLike,
    distance: np.ndarray,
    columns: Mapping[str, np.ndarray],
    unit: str,
    *,
    scaled: bool = True,
    title: str = "",
) -> Path:
    """The plot of :func:`draw_profiles` as a 900 × 450 PNG (its Title text: ``title``)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.5), dpi=100)
    draw_profiles(figure, distance, columns, unit, scaled=scaled, title=title)
    figure.tight_layout()
    return write_replacing(
        path, lambda handle: figure.savefig(handle, format="png", metadata={"Title": title}),
        binary=True,
    )


def write_profile_csv(
    path: str | os.PathLike, distance: np.ndarray, columns: Mapping[str, np.ndarray], unit: str
) -> Path:
    """A CSV of the profiles: ``distance_<unit>`` then one column per layer, full precision."""

    def write(handle) -> None:
        writer = csv.writer(handle)
        writer.writerow([f"distance_{unit}", *columns])
        for row in zip(distance, *columns.values(), strict=True):
            writer.writerow([repr(float(v)) for v in row])

    return write_replacing(path, write)


def write_roi_csv(path: str | os.PathLike, rows: Sequence[Mapping]) -> Path:
    """A CSV of region statistics, one row per region, layer and frame (or stack),
    with the :data:`ROI_COLUMNS`; missing figures are left empty."""

    def write(handle) -> None:
        writer = csv.writer(handle)
        writer.writerow(ROI_COLUMNS)
        for row in rows:
            writer.writerow(["" if row.get(name) is None else _cell(row[name])
                             for name in ROI_COLUMNS])  # fmt: skip

    return write_replacing(path, write)


def _cell(value) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)
