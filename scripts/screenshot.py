"""Make the README's screenshots in a real napari viewer.

    xvfb-run -a .venv/bin/python scripts/screenshot.py [--out docs]

Writes

* ``series.png``: ``napari-xray view`` — the nine-frame series (frame 2, the
  tutorial's 00000011_001) with the Compare-all and Statistics docks;
* ``compare-grid.png``: the same viewer after "Compare all": the tutorial's nine
  panels side by side in napari's grid view;
* ``boxes.png``: the series opened from a folder that also holds the data set's
  entry rows and a box file in its format (made for the picture: the data set has
  no boxes for patient 11), frame 000 with its box and the Frame details dock;
* ``profile.png``: frame 4 with its LoG (σ = 3) and gradient magnitude (σ = 2) and the
  Line profile dock, along a line across the lower edge of a rib: the LoG's zero
  crossing and the gradient's peak lie on the edge;
* ``explain.png``: the "What the tutorial gets wrong" dock with its four pairs for
  frame 1 (the tutorial's) in grid view.

The real frames come from ``NAPARI_XRAY_DATA_DIR`` (or the download cache); when
they are unavailable the synthetic phantom is used and the script says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

WINDOW_SIZE = (1400, 900)


def _settle(app, viewer, seconds: float = 0.5) -> None:
    """Process events until napari-xray's workers are done (the stack statistics) and
    ``seconds`` more, then close notification toasts over the canvas."""
    from napari_xray.plugin.threads import running_workers

    deadline = time.perf_counter() + 60
    while running_workers() and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)
    try:
        from napari._qt.dialogs.qt_notification import NapariQtNotification
    except ImportError:  # pragma: no cover - napari moved it
        return
    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.hide()
    app.processEvents()


def main(argv=None) -> int:
    """Write the screenshots; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="output folder (default docs)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from qtpy.QtWidgets import QApplication

    from napari_xray.plugin.console import compare_all
    from napari_xray.plugin.viewer import open_viewer

    viewer = open_viewer(show=True)
    app = QApplication.instance()
    viewer.window._qt_window.resize(*WINDOW_SIZE)
    viewer.window.add_plugin_dock_widget("napari-xray", "Statistics")
    (layer,) = viewer.layers
    viewer.layers.selection.active = layer
    if layer.ndim == 3:
        viewer.dims.set_current_step(0, min(1, layer.data.shape[0] - 1))
    viewer.reset_view()
    _settle(app, viewer)
    viewer.screenshot(str(out / "series.png"), canvas_only=False)

    compare_all(viewer, layer, wait=True)
    viewer.layers.selection.active = layer
    _settle(app, viewer)
    viewer.screenshot(str(out / "compare-grid.png"), canvas_only=False)
    viewer.close()
    _boxes_screenshot(app, out / "boxes.png")
    _profile_screenshot(app, out / "profile.png")
    _explain_screenshot(app, out / "explain.png")
    for name in ("series.png", "compare-grid.png", "boxes.png", "profile.png", "explain.png"):
        print(out / name)
    return 0


#: Boxes in BBox_List_2017.csv's format, made for the picture.
ILLUSTRATION_BOXES = (
    "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
    "00000011_000.png,Effusion,610.0,600.0,250.0,230.0,,,\n"
    "00000011_006.png,Atelectasis,180.0,520.0,210.0,160.0,,,\n"
)


def _boxes_screenshot(app, path: Path) -> None:
    """The series with the entry rows and illustrative boxes, and the Frame details dock."""
    import tempfile
    from importlib.resources import files

    import napari

    from napari_xray.samples import fetch_frames

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder) / "patient 11"
        folder.mkdir()
        for frame in fetch_frames():
            (folder / frame.name).symlink_to(frame)
        rows = files("napari_xray") / "sample_data" / "Data_Entry_2017_patient11.csv"
        (folder / "Data_Entry_2017.csv").write_bytes(rows.read_bytes())
        (folder / "BBox_List_2017.csv").write_text(ILLUSTRATION_BOXES)
        viewer = napari.Viewer(show=True)
        viewer.window._qt_window.resize(*WINDOW_SIZE)
        image, _boxes = viewer.open(str(folder), plugin="napari-xray")
        viewer.window.add_plugin_dock_widget("napari-xray", "Frame details")
        viewer.layers.selection.active = image
        viewer.dims.set_current_step(0, 0)
        viewer.reset_view()
        _settle(app, viewer)
        viewer.screenshot(str(path), canvas_only=False)
        viewer.close()


#: A line down across the lower edge of a rib in frame 4 (row, column; pixels).
RIB_EDGE_LINE = ((232.0, 720.0), (292.0, 720.0))


def _profile_screenshot(app, path: Path) -> None:
    """Frame 4, its LoG and gradient magnitude, and the profile across a rib's edge."""
    import napari
    import numpy as np
    from qtpy.QtCore import Qt

    from napari_xray.plugin.console import add_filter

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*WINDOW_SIZE)
    (series,) = viewer.open_sample("napari-xray", "series")
    add_filter(viewer, series, "log", sigma=3.0)
    add_filter(viewer, series, "gradient", sigma=2.0)
    for layer in viewer.layers[1:]:
        layer.visible = False
    dock_widget, dock = viewer.window.add_plugin_dock_widget("napari-xray", "Line profile")
    viewer.window._qt_window.resizeDocks([dock_widget], [560], Qt.Orientation.Horizontal)
    dock.image_layer = series
    lines = viewer.add_shapes([np.array(RIB_EDGE_LINE)], shape_type="line", ndim=2,
                              edge_color="yellow", edge_width=3, name="rib edge")
    dock.shapes_layer = lines
    viewer.dims.set_current_step(0, 4)
    viewer.layers.selection.active = series
    viewer.scene.camera.center = (262.0, 720.0)
    viewer.scene.camera.zoom = 3.0
    _settle(app, viewer)
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()


def _explain_screenshot(app, path: Path) -> None:
    """The four pairs of frame 1 in grid view, with the dock and its captions."""
    import napari
    from qtpy.QtCore import Qt

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*WINDOW_SIZE)
    (series,) = viewer.open_sample("napari-xray", "series")
    viewer.dims.set_current_step(0, 1)
    dock_widget, dock = viewer.window.add_plugin_dock_widget("napari-xray",
                                                             "What the tutorial gets wrong")
    viewer.window._qt_window.resizeDocks([dock_widget], [420], Qt.Orientation.Horizontal)
    dock.choose_pair(None)
    dock.show_pairs()
    deadline = time.perf_counter() + 120
    while (dock.busy or not dock.showing) and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)
    _settle(app, viewer)
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()
    from PIL import Image

    with Image.open(path) as shot:  # twelve panels: 256 colours keep it under 400 kB
        quantized = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    quantized.save(path, optimize=True)


if __name__ == "__main__":
    sys.exit(main())
