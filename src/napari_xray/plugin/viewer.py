"""Open napari with the X-ray series (or INPUT) and the comparison widget docked
(what ``napari-xray view [INPUT]`` runs), and make napari-xray napari's reader of
choice for X-ray files.

Without INPUT the viewer opens the ``series`` sample (the nine ChestX-ray8
frames, from ``NAPARI_XRAY_DATA_DIR`` or the download cache); when those cannot
be had it says so and opens the synthetic ``phantom`` instead. INPUT (a PNG, a
DICOM file or a folder of frames) is read with napari-xray's reader.
:func:`prefer_napari_xray_reader` records napari-xray in napari's reader
preferences (``plugins.extension2reader``) for PNG and DICOM files and folders,
so File ▸ Open no longer asks, nor preselects "napari builtins".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["READER_PATTERNS", "open_viewer", "prefer_napari_xray_reader"]

PLUGIN = "napari-xray"
#: napari's reader-preference patterns napari-xray takes: its file types, and every
#: folder (napari matches a folder as its path followed by the separator).
READER_PATTERNS = ("*.png", "*.PNG", "*.dcm", "*.DCM", "*.dicom", "*" + os.sep)


def prefer_napari_xray_reader(prefer: bool = True) -> dict[str, str]:
    """Make napari open PNG and DICOM files and folders with napari-xray, without asking.

    ``napari_xray.prefer_napari_xray_reader()`` sets napari-xray as the preferred
    reader for ``*.png``, ``*.dcm``, ``*.dicom`` and folders in napari's settings
    (Preferences ▸ Plugins; ``plugins.extension2reader``), which napari keeps
    between sessions, as when "Remember this choice" is ticked in its reader
    dialog. A folder napari-xray cannot read (e.g. another plugin's Zarr store)
    then fails with napari-xray first and napari offers the other readers.

    Parameters
    ----------
    prefer : bool
        ``False`` removes these preferences again (only those naming napari-xray).

    Returns
    -------
    dict of str to str
        napari's reader preferences afterwards, pattern → plugin.
    """
    from napari.settings import get_settings

    settings = get_settings()
    preferences = dict(settings.plugins.extension2reader)
    for pattern in READER_PATTERNS:
        if prefer:
            preferences[pattern] = PLUGIN
        elif preferences.get(pattern) == PLUGIN:
            del preferences[pattern]
    settings.plugins.extension2reader = preferences
    return dict(settings.plugins.extension2reader)


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

    Also makes napari-xray napari's preferred reader for PNG and DICOM files and
    folders (:func:`prefer_napari_xray_reader`), so that File ▸ Open reads them
    with it.

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

    prefer_napari_xray_reader()
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
        # As the menu opens it, so the menu shows this dock instead of adding a second one.
        viewer.window.add_plugin_dock_widget(PLUGIN, "Compare all")
        if compare:
            compare_all(viewer, wait=False)
    except BaseException:
        if own_viewer:
            viewer.close()
        raise
    return viewer
