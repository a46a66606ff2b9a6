"""The tutorial's whole comparison, headless: figure, GIF, histogram and statistics.

``napari-xray compare [INPUT …] --out DIR`` reads the input (the ChestX-ray8
series by default; the synthetic phantom, with a notice, when the real frames
cannot be had), runs every panel of :data:`napari_xray.engine.operations.COMPARISON`
on the whole stack and writes into DIR:

* ``comparison.png`` – the tutorial's side-by-side figure of one frame;
* ``stack.gif`` – an animated GIF of the stack (frames scaled to uint8 with the
  tutorial's formula);
* ``histogram.png`` – the 256-bin intensity histogram (``ndimage.histogram``);
* ``statistics.csv`` and ``statistics.json`` – dtype, min, max, mean, median and
  std of every frame and of the whole stack.

Everything is written into a hidden temporary folder beside DIR first and moved
into DIR (one atomic rename per file) only when all outputs exist, so a failed
computation or write never leaves half a result.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_xray.engine.operations import (
    COMPARISON,
    HISTOGRAM_THRESHOLD,
    ComparisonPanel,
    get_operation,
)
from napari_xray.engine.statistics import image_statistics, intensity_histogram
from napari_xray.io.gif import save_gif

__all__ = [
    "OUTPUT_FILES",
    "load_input",
    "run_comparison",
    "write_comparison",
]

#: The files ``compare`` writes into its output folder.
OUTPUT_FILES = (
    "comparison.png",
    "stack.gif",
    "histogram.png",
    "statistics.csv",
    "statistics.json",
)


@dataclass
class ComparisonInput:
    """A stack to compare, with the names of its frames and where it came from."""

    stack: np.ndarray  # (N, H, W)
    frame_names: list[str]
    source: str


def load_input(inputs: Sequence[str] | None = None, notice: Callable[[str], None] = print):
    """Load what ``compare`` works on: the given files/folders, else the real series.

    Parameters
    ----------
    inputs : sequence of str, optional
        Files or folders for :func:`napari_xray.io.read_xray_with_metadata`.
        Empty or None: the nine-frame ChestX-ray8 series; if those frames cannot
        be had (offline, no mirror), the synthetic phantom, announced through
        ``notice``.

    Returns
    -------
    ComparisonInput
        The stack is always 3-D (a single image becomes one frame).

    Raises
    ------
    napari_xray.errors.XrayReadError
        When a given input cannot be read.
    """
    if inputs:
        from napari_xray.io.read import read_xray_with_metadata

        paths = list(inputs)
        data, metadata = read_xray_with_metadata(paths[0] if len(paths) == 1 else paths)
        stack = data if data.ndim == 3 else data[np.newaxis]
        names = list(metadata.get("file_names") or [])
        if len(names) != stack.shape[0]:
            names = [f"frame {i}" for i in range(stack.shape[0])]
        return ComparisonInput(stack, names, ", ".join(str(p) for p in paths))

    from napari_xray.samples import FRAME_NAMES, SampleDataError, load_sample

    try:
        stack = load_sample("series")
        return ComparisonInput(stack, list(FRAME_NAMES), "ChestX-ray8 series (00000011)")
    except SampleDataError as error:
        notice(
            "napari-xray: the ChestX-ray8 frames are not available "
            f"({error}); using the synthetic chest phantom instead."
        )
        stack = load_sample("phantom")
        names = [f"phantom_{i:03d}" for i in range(stack.shape[0])]
        return ComparisonInput(stack, names, "synthetic chest phantom")


def run_comparison(
    stack: np.ndarray,
    panels: Sequence[ComparisonPanel] = COMPARISON,
    progress: Callable[[ComparisonPanel], None] | None = None,
) -> list[tuple[ComparisonPanel, np.ndarray]]:
    """Compute every panel of the comparison on the whole stack.

    Panels that share an operation and parameters (Sobel in gray and in hot)
    are computed once.

    Returns
    -------
    list of (panel, result)
        The original panel's result is ``stack`` itself (not a copy).
    """
    cache: dict[tuple, np.ndarray] = {}
    results = []
    for panel in panels:
        if panel.key is None:
            result = stack
        else:
            operation = get_operation(panel.key)
            signature = (panel.key, tuple(sorted(operation.resolve(panel.params).items())))
            if signature not in cache:
                cache[signature] = operation(stack, **panel.params)
            result = cache[signature]
        results.append((panel, result))
        if progress is not None:
            progress(panel)
    return results


# --------------------------------------------------------------------------- writers


def _matplotlib_pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save_comparison_figure(results, frame_index: int, title: str, path: Path) -> None:
    plt = _matplotlib_pyplot()
    columns = 3
    rows = -(-len(results) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4.2 * rows), dpi=100)
    for axis in np.ravel(axes):
        axis.axis("off")
    for axis, (panel, result) in zip(np.ravel(axes), results, strict=False):
        axis.imshow(result[frame_index], cmap=panel.colormap, interpolation="nearest")
        axis.set_title(panel.title, fontsize=11)
    figure.suptitle(title, fontsize=13)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _save_histogram(stack: np.ndarray, threshold: float, title: str, path: Path) -> None:
    plt = _matplotlib_pyplot()
    counts, edges = intensity_histogram(stack, bins=256)
    figure, axis = plt.subplots(figsize=(8, 4), dpi=100)
    axis.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="0.3")
    label = f"{HISTOGRAM_THRESHOLD.label} {threshold:g}"
    axis.axvline(threshold, color="tab:red", linestyle="--", label=label)
    axis.set_xlabel("pixel intensity")
    axis.set_ylabel("pixel count")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _statistics_rows(comparison: ComparisonInput) -> list[dict]:
    rows = []
    for name, frame in zip(comparison.frame_names, comparison.stack, strict=True):
        rows.append({"frame": name, **image_statistics(frame)})
    rows.append({"frame": "all", **image_statistics(comparison.stack)})
    for row in rows:
        row["shape"] = "x".join(str(n) for n in row["shape"])
    return rows


def _save_statistics(rows: list[dict], csv_path: Path, json_path: Path) -> None:
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(json_path, "w") as handle:
        json.dump(rows, handle, indent=2)
        handle.write("\n")


def write_comparison(
    comparison: ComparisonInput,
    out_dir: str | os.PathLike,
    *,
    frame_index: int = 0,
    gif_duration: float = 0.5,
    show_progress: bool | None = None,
) -> list[Path]:
    """Run the comparison on ``comparison.stack`` and write every output into ``out_dir``.

    All files are written to a temporary folder beside ``out_dir`` and moved in
    only when every one of them exists (one atomic rename each); an error while
    computing or writing changes nothing in ``out_dir``.

    Parameters
    ----------
    frame_index : int
        The frame shown in the side-by-side figure (negative counts from the end).
    gif_duration : float
        Seconds each frame shows in the animated GIF (> 0).
    show_progress : bool, optional
        Draw a terminal progress bar (default: when stderr is a terminal).

    Returns
    -------
    list of pathlib.Path
        The written files, in the order of :data:`OUTPUT_FILES`.

    Raises
    ------
    ValueError
        For a bad frame index or duration, or input the filters reject.
    OSError
        When ``out_dir`` cannot be created or written.
    """
    stack = comparison.stack
    count = stack.shape[0]
    if not -count <= frame_index < count:
        raise ValueError(
            f"--frame {frame_index} is out of range; the input has {count} frame(s) (0…{count - 1})"
        )
    frame_index %= count
    if not gif_duration > 0:
        raise ValueError(f"--gif-duration must be a positive number of seconds, got {gif_duration}")

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} exists and is not a folder; pass a folder path")
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    steps = len(COMPARISON) + len(OUTPUT_FILES)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    from tqdm import tqdm

    with tqdm(total=steps, desc="compare", unit="step", disable=not show_progress) as bar:
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        try:
            results = run_comparison(stack, progress=lambda panel: bar.update(1))
            title = f"{comparison.source} — frame {comparison.frame_names[frame_index]}"
            _save_comparison_figure(results, frame_index, title, staging / "comparison.png")
            bar.update(1)
            save_gif(staging / "stack.gif", stack, duration=gif_duration)
            bar.update(1)
            threshold = HISTOGRAM_THRESHOLD.value_in(COMPARISON)
            _save_histogram(
                stack,
                threshold,
                f"Pixel intensities — {comparison.source}",
                staging / "histogram.png",
            )
            bar.update(1)
            _save_statistics(
                _statistics_rows(comparison),
                staging / "statistics.csv",
                staging / "statistics.json",
            )
            bar.update(2)
            out_dir.mkdir(exist_ok=True)
            written = []
            for name in OUTPUT_FILES:
                target = out_dir / name
                os.replace(staging / name, target)
                written.append(target)
            return written
        finally:
            shutil.rmtree(staging, ignore_errors=True)
