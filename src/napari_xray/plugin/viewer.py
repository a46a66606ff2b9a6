"""Open napari with the X-ray series (or INPUT) and the comparison widget docked
(what ``napari-xray view [INPUT]`` runs).

Without INPUT the viewer opens the ``series`` sample (the nine ChestX-ray8
frames, from ``NAPARI_XRAY_DATA_DIR`` or the download cache); when those cannot
be had it says so and opens the synthetic ``phantom`` instead. INPUT (a PNG, a
DICOM file or a folder of frames) is read with napari-xray's reader.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["open_viewer"]

PLUGIN = "napari-xray"


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

    from napari_xray.plugin.console import compare_all
    from napari_xray.plugin.widgets.compare import CompareWidget

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
