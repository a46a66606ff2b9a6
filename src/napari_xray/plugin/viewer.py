"""``napari-xray view [INPUT]``: open napari with the X-ray series (or INPUT) and the
comparison widget docked.

Without INPUT the viewer opens the ``series`` sample (the nine ChestX-ray8
frames, from ``NAPARI_XRAY_DATA_DIR`` or the download cache); when those cannot
be had it says so and opens the synthetic ``phantom`` instead. INPUT (a PNG, a
DICOM file or a folder of frames) is read with napari-xray's reader.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["add_parser", "open_viewer", "run_view"]

PLUGIN = "napari-xray"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``view`` subcommand on ``subparsers``; returns its parser."""
    parser = subparsers.add_parser(
        "view",
        help="open napari with the X-ray series (or INPUT) and the comparison widget",
        description="Open napari with the nine ChestX-ray8 frames (or INPUT: a PNG, a DICOM "
        "file or a folder of frames) and the napari-xray comparison widget docked. Without "
        "the real frames (offline, no NAPARI_XRAY_DATA_DIR) the synthetic phantom opens.",
    )
    parser.add_argument("input", nargs="?", metavar="INPUT", help="PNG, DICOM or folder to open")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="switch the compare-all grid on right away",
    )
    parser.add_argument(
        "--no-run",
        action="store_true",
        help="set everything up but do not start napari's event loop (for scripted checks)",
    )
    parser.set_defaults(run=run_view)
    return parser


def _sample_error(error: BaseException):
    """The SampleDataError in ``error``'s chain (napari may wrap plugin errors), or None."""
    from napari_xray.samples import SampleDataError

    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, SampleDataError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def open_viewer(
    path: str | Path | None = None,
    *,
    viewer: napari.Viewer | None = None,
    compare: bool = False,
    show: bool = True,
) -> napari.Viewer:
    """Open the series (or ``path``) in a napari viewer with the comparison widget docked.

    Parameters
    ----------
    path : str or Path, optional
        A PNG, DICOM file or folder for napari-xray's reader; default: the
        ``series`` sample, or the ``phantom`` (with a printed notice) when the
        real frames cannot be obtained.
    viewer : napari.Viewer, optional
        Use this viewer instead of creating one.
    compare : bool
        Switch the compare-all grid on.
    show : bool
        Show a newly created viewer's window.

    Returns
    -------
    napari.Viewer

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (checked before any window opens).
    """
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(f"{path} does not exist; pass a PNG, DICOM file or folder")
    import napari

    from napari_xray.plugin.widgets.compare import CompareWidget, compare_all

    own_viewer = viewer is None
    if viewer is None:
        viewer = napari.Viewer(title="napari-xray", show=show)
    try:
        if path is not None:
            viewer.open(str(path), plugin=PLUGIN)
        else:
            try:
                viewer.open_sample(PLUGIN, "series")
            except Exception as error:
                cause = _sample_error(error)
                if cause is None:
                    raise
                print(
                    f"napari-xray view: the real frames are not available ({cause}); "
                    "showing the synthetic phantom instead.",
                    file=sys.stderr,
                )
                viewer.open_sample(PLUGIN, "phantom")
        widget = CompareWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Compare all (napari-xray)", area="right")
        if compare:
            compare_all(viewer, wait=False)
    except BaseException:
        if own_viewer:
            viewer.close()
        raise
    return viewer


def run_view(args: argparse.Namespace) -> int:
    """``napari-xray view``: open the viewer and run napari until its window closes.

    Returns
    -------
    int
        0 on success (errors propagate to :func:`napari_xray.cli.main`, which
        prints them and exits with status 2).
    """
    import napari

    viewer = open_viewer(getattr(args, "input", None), compare=getattr(args, "compare", False))
    if getattr(args, "no_run", False):
        viewer.close()
        return 0
    napari.run()
    return 0
