"""The tutorial's whole comparison, headless: figure, GIF, histogram and statistics.

``napari-xray compare [INPUT …] --out DIR`` reads the input (the ChestX-ray8
series by default; the synthetic phantom, with a notice, when the real frames
cannot be downloaded and no ``NAPARI_XRAY_DATA_DIR`` is set), runs every panel
of :data:`napari_xray.engine.operations.COMPARISON` on the whole stack and
writes into DIR:

* ``comparison.png`` – the tutorial's side-by-side figure of one frame;
* ``stack.gif`` – an animated GIF of the stack (frames scaled to uint8 with the
  tutorial's formula);
* ``histogram.png`` – the 256-bin intensity histogram (``ndimage.histogram``);
* ``statistics.csv`` and ``statistics.json`` – dtype, min, max, mean, median and
  std of every frame and of the whole stack (and its ChestX-ray8 findings and view);
* with ``--line``, ``profile.png`` and ``profile.csv`` – every panel's profile
  along the line. These two names are compare's own: a run without ``--line``
  removes an earlier run's.

DIR is replaced as a whole: everything is written into a hidden staging folder
beside it (``.DIR.compare-staging-<host>-<pid>-<id>``, other files of DIR
hard-linked in), which then takes DIR's place in one atomic exchange (Linux
``renameat2``, macOS ``renamex_np``; elsewhere two renames, undone by the next
run if killed between). A failure or a kill at any instant leaves DIR with the
complete old set or the complete new set; staging folders of killed runs are
removed by the next run. A DIR that cannot be swapped (a mount point, the
working folder, a read-only parent) gets its files replaced one by one.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_xray.batch.lock import process_alive
from napari_xray.engine.operations import (
    COMPARISON,
    HISTOGRAM_THRESHOLD,
    ComparisonPanel,
)
from napari_xray.engine.statistics import image_statistics, intensity_histogram
from napari_xray.io.chestxray8 import findings_text
from napari_xray.io.gif import save_gif

__all__ = [
    "OUTPUT_FILES",
    "PROFILE_FILES",
    "STALE_STAGING_MINUTES",
    "load_input",
    "remove_stale_staging",
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
#: What ``compare --line`` writes as well: the profile of every panel along the line.
PROFILE_FILES = ("profile.png", "profile.csv")
# Every file compare may write: a new set never keeps an old one's (a stale profile).
_ALL_OUTPUTS = frozenset(OUTPUT_FILES + PROFILE_FILES)
#: A staging folder whose run is gone from this host, or older than this, is removed.
STALE_STAGING_MINUTES = 60


@dataclass
class ComparisonInput:
    """A stack to compare, with the names of its frames and where it came from.

    ``frames`` holds each frame's ChestX-ray8 entry row (findings, view …; see
    :func:`napari_xray.io.chestxray8.frames_entries`), ``None`` for a frame without
    one, or is ``None`` when no entry file describes the input.
    """

    stack: np.ndarray  # (N, H, W)
    frame_names: list[str]
    source: str
    frames: list[dict | None] | None = None

    def finding_text(self, index: int) -> str:
        """Frame ``index``'s findings and view (``"Effusion; PA view"``), or ``""``."""
        entry = self.frames[index] if self.frames else None
        if entry is None:
            return ""
        return f"{findings_text(entry)}; {entry['view']} view"


def load_input(inputs: Sequence[str] | None = None, notice: Callable[[str], None] = print):
    """Load what ``compare`` works on: the given files/folders, else the real series.

    Parameters
    ----------
    inputs : sequence of str, optional
        Files or folders for :func:`napari_xray.io.read_xray_with_metadata`.
        Empty or None: the nine-frame ChestX-ray8 series, from
        ``NAPARI_XRAY_DATA_DIR`` when it is set, else downloaded; only when no
        such folder is set and the download fails, the synthetic phantom,
        announced through ``notice``.

    Returns
    -------
    ComparisonInput
        The stack is always 3-D (a single image becomes one frame).

    Raises
    ------
    napari_xray.errors.XrayReadError
        When a given input cannot be read.
    napari_xray.errors.SampleDataError
        ``NAPARI_XRAY_DATA_DIR`` is set and lacks a frame or holds one whose hash
        differs (the message names the file): a configured source is never
        silently replaced by the phantom.
    """
    if inputs:
        from napari_xray.io.read import read_xray_with_metadata

        paths = list(inputs)
        data, metadata = read_xray_with_metadata(paths[0] if len(paths) == 1 else paths)
        stack = data if data.ndim == 3 else data[np.newaxis]
        names = list(metadata.get("file_names") or [])
        frames = metadata.get("frames")
        if len(names) != stack.shape[0]:
            names, frames = [f"frame {i}" for i in range(stack.shape[0])], None
        return ComparisonInput(stack, names, ", ".join(str(p) for p in paths), frames)

    from napari_xray.samples import (
        ENV_DATA_DIR,
        FRAME_NAMES,
        SampleDataError,
        frames_metadata,
        load_sample,
    )

    source = "ChestX-ray8 series (00000011)"
    frames = frames_metadata()["frames"]
    if os.environ.get(ENV_DATA_DIR, "").strip():
        return ComparisonInput(load_sample("series"), list(FRAME_NAMES), source, frames)
    try:
        stack = load_sample("series")
        return ComparisonInput(stack, list(FRAME_NAMES), source, frames)
    except SampleDataError as error:
        notice(
            "napari-xray: the ChestX-ray8 frames are not available "
            f"({error}); using the synthetic chest phantom instead (set {ENV_DATA_DIR} "
            "to a folder holding the frames to use them)."
        )
        stack = load_sample("phantom")
        names = [f"phantom_{i:03d}" for i in range(stack.shape[0])]
        return ComparisonInput(stack, names, "synthetic chest phantom")


def run_comparison(
    stack: np.ndarray,
    panels: Sequence[ComparisonPanel] = COMPARISON,
    progress: Callable[[ComparisonPanel], None] | None = None,
) -> list[tuple[ComparisonPanel, np.ndarray]]:
    """Compute every panel of the comparison on the whole stack, in one fused engine run.

    Panels that share an operation and parameters (Sobel in gray and in hot)
    are computed once (:func:`napari_xray.engine.pipeline.run_operations`).

    Returns
    -------
    list of (panel, result)
        The original panel's result is ``stack`` itself (not a copy).
    """
    from napari_xray.engine.pipeline import run_operations

    computed = [panel for panel in panels if panel.key is not None]
    arrays = iter(run_operations(stack, [(panel.key, panel.params) for panel in computed]))
    results = []
    for panel in panels:
        results.append((panel, stack if panel.key is None else next(arrays)))
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
    figure.savefig(path, metadata={"Title": title})  # also in the PNG's own text chunk
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
    """One row per frame and one for the stack; ChestX-ray8 findings and view last
    (``""`` where no entry file says)."""
    rows = []
    for index, (name, frame) in enumerate(
        zip(comparison.frame_names, comparison.stack, strict=True)
    ):
        entry = comparison.frames[index] if comparison.frames else None
        rows.append({
            "frame": name,
            **image_statistics(frame),
            "findings": "" if entry is None else findings_text(entry, "|"),
            "view": "" if entry is None else entry["view"],
        })  # fmt: skip
    rows.append({"frame": "all", **image_statistics(comparison.stack), "findings": "", "view": ""})
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


def _profile_rows(results, frame_index: int, line, spacing):
    """(distance, {panel title: values}) of every panel's frame along ``line``."""
    from napari_xray.engine.measure import line_profile

    start, end = line[:2], line[2:]
    columns = {}
    distance = None
    for panel, result in results:
        distance, values = line_profile(result[frame_index], start, end, spacing=spacing)
        columns[panel.title] = values
    return distance, columns


def _save_profile(distance, columns, unit: str, title: str, png: Path, table: Path) -> None:
    from napari_xray.io.measurements import write_profile_csv, write_profile_png

    write_profile_png(png, distance, columns, unit, title=title)
    write_profile_csv(table, distance, columns, unit)


def parse_line(text: str) -> tuple[float, float, float, float]:
    """``"Y0,X0,Y1,X1"`` (pixels) as four floats; raises ValueError saying what to pass."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(np.isfinite(values)):
        raise ValueError(f"--line {text!r}: pass four numbers Y0,X0,Y1,X1 (pixels), "
                         "e.g. --line 100,100,900,700")  # fmt: skip
    return values


def _check_line(line, frame_shape) -> None:
    """Refuse a line that is not four finite numbers or ends over a pixel off the frame."""
    values = np.asarray(line, dtype=float)
    rows, cols = frame_shape
    if values.shape != (4,) or not np.isfinite(values).all():
        raise ValueError(f"--line needs four finite numbers Y0,X0,Y1,X1, got {line}")
    ys, xs = values[0::2], values[1::2]
    if (ys < -1).any() or (ys > rows).any() or (xs < -1).any() or (xs > cols).any():
        raise ValueError(
            f"--line {', '.join(f'{v:g}' for v in values)} ends off the {rows}×{cols} "
            f"frame; pass rows 0–{rows - 1} and columns 0–{cols - 1}"
        )


def write_comparison(
    comparison: ComparisonInput,
    out_dir: str | os.PathLike,
    *,
    frame_index: int = 0,
    gif_duration: float = 0.5,
    show_progress: bool | None = None,
    line: tuple[float, float, float, float] | None = None,
    panels: Sequence[ComparisonPanel] = COMPARISON,
) -> list[Path]:
    """Run the comparison on ``comparison.stack`` and replace ``out_dir`` with its outputs.

    Everything is written to a staging folder that then takes ``out_dir``'s place
    in one atomic step (see the module docstring); other files in ``out_dir``
    are kept. An error, Ctrl-C or a kill while computing or writing leaves
    ``out_dir`` as it was. Staging folders of killed runs are removed first
    (:func:`remove_stale_staging`).

    Parameters
    ----------
    frame_index : int
        The frame shown in the side-by-side figure (negative counts from the end).
    gif_duration : float
        Seconds each frame shows in the animated GIF (> 0).
    show_progress : bool, optional
        Draw a terminal progress bar (default: when stderr is a terminal).
    line : (y0, x0, y1, x1), optional
        Also write :data:`PROFILE_FILES`: every panel's profile along this line
        through the shown frame (:func:`napari_xray.line_profile`), plotted each
        scaled to its own range, and as a table in the panels' own units;
        distances in mm when the entry file gives the frame's pixel size.
    panels : sequence of ComparisonPanel
        What the figure shows (default: the tutorial's set; a recipe's with
        :func:`napari_xray.recipe.comparison_panels`).

    Returns
    -------
    list of pathlib.Path
        The written files, in the order of :data:`OUTPUT_FILES` (then
        :data:`PROFILE_FILES`).

    Raises
    ------
    ValueError
        For a bad frame index or duration, or input the filters reject.
    OSError
        When ``out_dir`` or its parent folder cannot be written.
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

    out_dir = Path(os.path.abspath(out_dir))
    if out_dir.is_symlink():
        out_dir = out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} exists and is not a folder; pass a folder path")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out_dir)

    if line is not None:
        _check_line(line, stack.shape[-2:])
    outputs = OUTPUT_FILES + (PROFILE_FILES if line is not None else ())
    steps = len(panels) + len(outputs)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    from tqdm import tqdm

    with tqdm(total=steps, desc="compare", unit="step", disable=not show_progress) as bar:
        swap = _can_swap(out_dir)
        staging = _staging_name(out_dir, "staging") if swap else out_dir / _inner_staging_name()
        staging.mkdir(parents=True)
        try:
            results = run_comparison(stack, panels, progress=lambda panel: bar.update(1))
            title = f"{comparison.source} — frame {comparison.frame_names[frame_index]}"
            if comparison.finding_text(frame_index):
                title += f" — {comparison.finding_text(frame_index)}"
            _save_comparison_figure(results, frame_index, title, staging / "comparison.png")
            bar.update(1)
            save_gif(staging / "stack.gif", stack, duration=gif_duration)
            bar.update(1)
            threshold = HISTOGRAM_THRESHOLD.value_in(panels)
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
            if line is not None:
                entry = comparison.frames[frame_index] if comparison.frames else None
                spacing = entry["pixel_size_mm"] if entry is not None else None
                distance, columns = _profile_rows(results, frame_index, line, spacing)
                _save_profile(distance, columns, "mm" if spacing else "px",
                              f"{title} — line {', '.join(f'{v:g}' for v in line)}",
                              staging / "profile.png", staging / "profile.csv")  # fmt: skip
                bar.update(2)
            if swap:
                _replace_folder(out_dir, staging)
            else:
                for name in sorted(_ALL_OUTPUTS - set(outputs)):  # never a stale profile
                    if (out_dir / name).is_file():
                        os.unlink(out_dir / name)
                for name in outputs:  # a mount point or the working folder: file by file
                    os.replace(staging / name, out_dir / name)
            return [out_dir / name for name in outputs]
        finally:
            shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------- the output folder

_HOST = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"


def _staging_name(out_dir: Path, kind: str) -> Path:
    """``.DIR.compare-<kind>-<host>-<pid>-<id>`` beside ``out_dir``."""
    return out_dir.with_name(
        f".{out_dir.name}.compare-{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )


def _inner_staging_name() -> str:
    return f".napari-xray-compare-staging-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _can_swap(out_dir: Path) -> bool:
    """Can ``out_dir`` be replaced by a folder beside it?

    Not when its parent is not writable, it is a mount point, or it holds the
    current working directory (the old folder is deleted).
    """
    parent = out_dir.parent
    if out_dir == parent or not os.access(parent, os.W_OK | os.X_OK):
        return False
    if os.path.commonpath([os.getcwd(), str(out_dir)]) == str(out_dir):
        return False
    return not out_dir.exists() or os.stat(out_dir).st_dev == os.stat(parent).st_dev


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` in one atomic step; False where the system cannot."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    if hasattr(libc, "renameat2"):  # Linux (glibc >= 2.28); RENAME_EXCHANGE = 2
        result = libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2)
    elif hasattr(libc, "renamex_np"):  # macOS; RENAME_SWAP = 2
        result = libc.renamex_np(os.fsencode(a), os.fsencode(b), 2)
    else:
        return False
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)


def _carry_over(old: Path, new: Path) -> None:
    """Put every entry of ``old`` that is not one of our outputs into ``new`` (hard links)."""
    with os.scandir(old) as entries:
        for entry in entries:
            if (entry.name in _ALL_OUTPUTS or _INNER_PATTERN.match(entry.name)
                    or os.path.lexists(new / entry.name)):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.copytree(entry.path, new / entry.name, symlinks=True,
                                copy_function=_link_or_copy)
            else:
                _link_or_copy(entry.path, str(new / entry.name))


def _replace_folder(out_dir: Path, staging: Path) -> None:
    """Make the complete ``staging`` folder ``out_dir``; the old one is deleted."""
    if not out_dir.exists():
        os.rename(staging, out_dir)  # atomic; also replaces an empty folder made meanwhile
        return
    _carry_over(out_dir, staging)
    if _exchange(staging, out_dir):
        old = staging  # the exchange left the old set at the staging path
    else:
        old = _staging_name(out_dir, "old")
        os.rename(out_dir, old)  # a kill here leaves no DIR: the next run renames old back
        os.rename(staging, out_dir)
    # Entries created in the old folder after the links were made move over too.
    with os.scandir(old) as entries:
        late = [e.name for e in entries
                if e.name not in _ALL_OUTPUTS and not os.path.lexists(out_dir / e.name)]
    for name in late:
        os.rename(old / name, out_dir / name)
    shutil.rmtree(old, ignore_errors=True)


def _staging_pattern(name: str) -> re.Pattern:
    return re.compile(
        rf"^\.{re.escape(name)}\.compare-(?P<kind>staging|old)-(?P<host>.+)-(?P<pid>\d+)"
        r"-[0-9a-f]{8}$"
    )


_INNER_PATTERN = re.compile(
    r"^\.napari-xray-compare-staging-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}$"
)


def _is_stale(path: Path, host: str, pid: int, now: float) -> bool:
    if host == _HOST and not process_alive(pid):
        return True
    try:
        age = now - path.lstat().st_mtime
    except OSError:
        return False
    return age > STALE_STAGING_MINUTES * 60


def remove_stale_staging(out_dir: str | os.PathLike) -> list[Path]:
    """Remove the staging folders that killed ``compare`` runs left for ``out_dir``.

    Only folders named as ``compare`` names them (``.DIR.compare-staging-…`` and
    ``.DIR.compare-old-…`` beside DIR, ``.napari-xray-compare-staging-…`` inside
    it) whose run is gone from this host, or that are older than
    :data:`STALE_STAGING_MINUTES`, are touched. An old set left without DIR (a
    kill between the two renames where no atomic exchange exists) is renamed
    back to DIR instead.

    Returns
    -------
    list of pathlib.Path
        The folders removed or restored.
    """
    out_dir = Path(out_dir)
    now = time.time()
    handled = []
    candidates = []
    for folder, pattern in ((out_dir.parent, _staging_pattern(out_dir.name)),
                            (out_dir, _INNER_PATTERN)):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = pattern.match(entry.name)
            if match and entry.is_dir(follow_symlinks=False):
                candidates.append((Path(entry.path), match))
    for path, match in candidates:
        if not _is_stale(path, match["host"], int(match["pid"]), now):
            continue
        if match.groupdict().get("kind") == "old" and not out_dir.exists():
            os.rename(path, out_dir)
        else:
            shutil.rmtree(path, ignore_errors=True)
        handled.append(path)
    return handled
