"""``napari-xray explain``: the tutorial's four mistakes on one frame, as figures.

For each pair of :func:`napari_xray.engine.explain.explain_pairs` it writes one
figure (the tutorial's result, napari-xray's and their difference, with the
two-line caption), then ``explain.png`` with the four together and
``explain.json`` with the captions and the figures they quote. Everything is
computed before anything is written, and each file is written whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from napari_xray.engine.explain import Pair, explain_pairs

__all__ = ["PAIR_FILES", "display_range", "draw_pair", "write_explanation"]

#: One figure per pair, in :data:`napari_xray.engine.explain.PAIRS` order.
PAIR_FILES = ("explain-1-wraparound.png", "explain-2-fourier.png", "explain-3-stack.png",
              "explain-4-canny.png")  # fmt: skip
COMBINED, SUMMARY = "explain.png", "explain.json"


#: Images are shown between these percentiles of their values (a few bright pixels,
#: the film's lettering, would otherwise leave the rest black); the data are not changed.
DISPLAY_PERCENTILE = 99.5


def display_range(image: np.ndarray) -> dict[str, float]:
    """``vmin`` and ``vmax`` that show ``image`` between its 0.5th and 99.5th percentiles."""
    low, high = np.percentile(image, [100 - DISPLAY_PERCENTILE, DISPLAY_PERCENTILE])
    return {"vmin": float(low), "vmax": float(high if high > low else low + 1)}


def draw_pair(axes, pair: Pair, number: int) -> None:
    """Draw ``pair`` on three matplotlib axes: tutorial, napari-xray, difference."""
    for axis in axes:
        axis.axis("off")
    if pair.tutorial is None:
        axes[1].text(0.5, 0.5, "\n".join(pair.caption), ha="center", va="center",
                     wrap=True, fontsize=9, transform=axes[1].transAxes)  # fmt: skip
        axes[0].set_title(f"{number}. {pair.title}", fontsize=10, loc="left")
        return
    limit = float(np.percentile(np.abs(pair.difference), DISPLAY_PERCENTILE)) or 1.0
    for axis, image, label, style in (
        (axes[0], pair.tutorial, pair.labels[0], {"cmap": "gray", **display_range(pair.tutorial)}),
        (axes[1], pair.engine, pair.labels[1], {"cmap": "gray", **display_range(pair.engine)}),
        (axes[2], pair.difference, f"{pair.labels[2]} ({pair.units})",
         {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}),
    ):
        shown = axis.imshow(image, interpolation="nearest", **style)
        axis.set_title(label, fontsize=8)
    axes[2].figure.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.02)
    axes[0].text(0.0, 1.12, f"{number}. {pair.title}", transform=axes[0].transAxes,
                 fontsize=10, weight="bold")  # fmt: skip


def _caption_text(pair: Pair) -> str:
    return "\n".join(pair.caption)


def _pair_png(pair: Pair, number: int, title: str) -> bytes:
    import io

    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 5.2), dpi=100)
    axes = figure.subplots(1, 3)
    draw_pair(axes, pair, number)
    figure.text(0.01, 0.02, _caption_text(pair), fontsize=9, va="bottom")
    figure.subplots_adjust(left=0.01, right=0.94, top=0.84, bottom=0.14, wspace=0.08)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Title": f"{title}: {pair.title}"})
    return buffer.getvalue()


def _combined_png(pairs: list[Pair], title: str) -> bytes:
    import io

    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 5.2 * len(pairs)), dpi=80)
    grid = figure.subplots(len(pairs), 3, squeeze=False)
    for number, (pair, axes) in enumerate(zip(pairs, grid, strict=True), start=1):
        draw_pair(axes, pair, number)
        axes[0].text(0.0, -0.1, _caption_text(pair), transform=axes[0].transAxes,
                     fontsize=8, va="top")  # fmt: skip
    figure.suptitle(title, fontsize=12, y=0.995)
    figure.subplots_adjust(left=0.01, right=0.94, top=0.955, bottom=0.03, hspace=0.5,
                           wspace=0.08)  # fmt: skip
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Title": title})
    return buffer.getvalue()


def write_explanation(stack, out_dir: str | os.PathLike, *, frame_index: int = 0,
                      source: str = "") -> list[Path]:
    """Write the four pairs for frame ``frame_index`` of ``stack`` into ``out_dir``.

    Returns
    -------
    list of pathlib.Path
        The pair figures (a pair that needs a stack is left out for a single
        frame), ``explain.png`` and ``explain.json``.
    """
    from napari_xray.io.paths import write_replacing

    stack = np.asarray(stack)
    pairs = explain_pairs(stack, frame_index)
    count = stack.shape[0] if stack.ndim == 3 else 1
    frame = frame_index % count
    title = f"What the tutorial gets wrong — {source or 'input'}, frame {frame}"
    files = {}
    for number, (pair, name) in enumerate(zip(pairs, PAIR_FILES, strict=True), start=1):
        if pair.tutorial is not None:
            files[name] = _pair_png(pair, number, title)
    files[COMBINED] = _combined_png(pairs, title)
    summary = {"source": source, "frame": frame, "pairs": [
        {"key": pair.key, "title": pair.title, "caption": list(pair.caption),
         "figures": pair.figures, "shown": pair.tutorial is not None} for pair in pairs]}
    files[SUMMARY] = (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in PAIR_FILES:  # a pair not shown this time leaves no older figure behind
        if name not in files:
            (out_dir / name).unlink(missing_ok=True)
    written = []
    for name, content in files.items():
        written.append(write_replacing(out_dir / name,
                                       lambda handle, data=content: handle.write(data),
                                       binary=True))  # fmt: skip
    return written
