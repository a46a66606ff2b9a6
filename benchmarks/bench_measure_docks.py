from machine import print_machine; print_machine(("numpy", "scipy", "scikit-image", "napari", "matplotlib"))  # noqa: E702, I001, E501  # fmt: skip

# The cost of one update of the Line profile and ROI statistics docks (issue 13: under
# 20 ms for a 1024² frame), in a real napari viewer, against scikit-image's own calls
# for the same figures in the same process.
#
# Run under a (virtual) display::
#
#     xvfb-run -a .venv/bin/python benchmarks/bench_measure_docks.py
#
# On the series sample (NAPARI_XRAY_DATA_DIR or ../shared/xray, else the download
# cache), frame 4, with the six results of the tutorial's operations (seven layers
# measured), median (min) of 30 runs:
#
# * **Line profile**, a line corner to corner (1,449 samples): the dock's update
#   (seven profiles, the lengths table, the curves moved in place) against
#   ``skimage.measure.profile_line`` on the seven frames; then the Agg render of the
#   plot that follows in the event loop (``draw_idle``), for scale;
# * **ROI statistics**, three regions (a 300 × 300 rectangle, an ellipse, a 7-vertex
#   polygon): the dock's update on a new frame (21 rows of figures; the stack's come
#   from a worker and are cached) against ``skimage.draw`` masks plus NumPy's figures
#   on the seven frames;
# * **a drag**: 60 moves of the line (napari's data events, as a drag's redraws), with
#   the Line profile dock open, against the same moves with no dock: the longest time
#   the event loop could not react (a 5 ms QTimer's longest gap).

import os  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from machine import timed  # noqa: E402
from skimage import draw  # noqa: E402
from skimage.measure import profile_line  # noqa: E402

REPEATS = 30
MOVES = 60
OPERATIONS = ("log", "gradient", "sobel", "prewitt", "canny", "mask")


def _ms(pair) -> str:
    return f"{pair[0] * 1e3:6.2f} ({pair[1] * 1e3:5.2f})"


def _longest_gap(app, action) -> float:
    """The longest gap (s) between ticks of a 5 ms QTimer while ``action()`` runs and
    the events it queued are handled."""
    from qtpy.QtCore import QTimer

    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    for _ in range(10):
        app.processEvents()
        time.sleep(0.005)
    action(app)
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.002)
    timer.stop()
    return float(np.max(np.diff(ticks)))


def main() -> None:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "xray"
    if "NAPARI_XRAY_DATA_DIR" not in os.environ and default.is_dir():
        os.environ["NAPARI_XRAY_DATA_DIR"] = str(default)
    import napari
    from qtpy.QtWidgets import QApplication

    import napari_xray as nx

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    (series,) = viewer.open_sample("napari-xray", "series")
    results = [nx.add_filter(viewer, series, key) for key in OPERATIONS]
    layers = [series, *results]
    viewer.dims.set_current_step(0, 4)
    frames = [np.asarray(layer.data[4], dtype=np.float64) for layer in layers]
    start, end = (0.0, 0.0), (1023.0, 1023.0)

    # The drag without any dock first: napari's own cost.
    lines = viewer.add_shapes([np.array([start, end])], shape_type="line", ndim=2,
                              name="profile lines")  # fmt: skip

    def drag(app) -> None:
        for step in range(MOVES):
            offset = 20.0 * np.sin(step / 6)
            lines.data = [np.array([[start[0] + offset, start[1]], [end[0] + offset, end[1]]])]
            app.processEvents()

    _longest_gap(app, drag)  # napari's first redraws of a shape cost more: not counted
    without_dock = _longest_gap(app, drag)
    dock_widget, profile_dock = viewer.window.add_plugin_dock_widget("napari-xray",
                                                                     "Line profile")
    profile_dock.image_layer, profile_dock.shapes_layer = series, lines
    lines.data = [np.array([start, end])]
    profile_dock.refresh()
    assert len(profile_dock.profile["columns"]) == len(layers)
    with_dock = _longest_gap(app, drag)
    lines.data = [np.array([start, end])]
    profile_dock.refresh()

    print(f"\nseries frame 4, {len(layers)} layers measured; median (min) ms:")
    ours = timed(profile_dock.refresh, REPEATS)
    theirs = timed(lambda: [profile_line(frame, start, end) for frame in frames], REPEATS)
    render = timed(profile_dock._canvas.draw, REPEATS)
    print(f"  Line profile update:     {_ms(ours)}   skimage profile_line x{len(layers)} "
          f"{theirs[0] * 1e3:6.2f}   ratio {ours[0] / theirs[0]:.2f}×   target < 20 ms: "
          f"{'met' if ours[0] < 0.02 else 'missed'}")  # fmt: skip
    print(f"  its plot's Agg render:   {_ms(render)}   (in the event loop, after the update)")
    print(f"  a {MOVES}-move line drag, longest stall: {with_dock * 1e3:6.1f} ms with the dock, "
          f"{without_dock * 1e3:6.1f} ms without   ratio {with_dock / without_dock:.2f}×")

    viewer.window.remove_dock_widget(dock_widget)
    rectangle = np.array([[100.5, 100.5], [100.5, 400.5], [400.5, 400.5], [400.5, 100.5]])
    ellipse = np.array([[450.0, 280.0], [450.0, 720.0], [750.0, 720.0], [750.0, 280.0]])
    polygon = np.array([[600.2, 100.3], [620.5, 300.1], [800.7, 350.2], [950.1, 250.6],
                        [900.4, 120.8], [780.9, 60.3], [650.0, 50.5]])
    regions = viewer.add_shapes([rectangle, ellipse, polygon],
                                shape_type=["rectangle", "ellipse", "polygon"], ndim=2,
                                name="regions")  # fmt: skip
    _dock, roi_dock = viewer.window.add_plugin_dock_widget("napari-xray", "ROI statistics")
    roi_dock.image_layer, roi_dock.shapes_layer = series, regions
    roi_dock.refresh()
    began = time.perf_counter()
    while roi_dock.stack_pending:
        app.processEvents()
        time.sleep(0.005)
    stack_seconds = time.perf_counter() - began
    roi_dock.refresh()
    assert len(roi_dock.rows) == 3 * len(layers) * 2 and not roi_dock.stack_pending
    ours = timed(roi_dock.refresh, REPEATS)
    vertices = [np.asarray(v, dtype=float) for v in regions.data]

    def numpy_way():
        masks = (draw.polygon(vertices[0][:, 0], vertices[0][:, 1], frames[0].shape),
                 draw.ellipse(600, 500, 150, 220, shape=frames[0].shape),
                 draw.polygon(vertices[2][:, 0], vertices[2][:, 1], frames[0].shape))
        for pixels in masks:
            for frame in frames:
                values = frame[pixels]
                values.mean(), values.std(), values.min(), values.max(), np.median(values)

    theirs = timed(numpy_way, REPEATS)
    print(f"  ROI statistics update:   {_ms(ours)}   skimage.draw + NumPy x{len(layers)} "
          f"{theirs[0] * 1e3:6.2f}   ratio {ours[0] / theirs[0]:.2f}×   target < 20 ms: "
          f"{'met' if ours[0] < 0.02 else 'missed'}")  # fmt: skip
    print(f"  the stack's figures (worker, once per region change): {stack_seconds * 1e3:.0f} ms")
    viewer.close()


if __name__ == "__main__":
    main()
