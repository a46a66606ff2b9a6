from machine import print_machine; print_machine(("numpy", "scipy", "scikit-image"))  # noqa: E702, I001  # fmt: skip

# The cost of a measurement update on one 1024² frame (issue 13: under 20 ms each),
# against scikit-image's own calls in the same process.
#
# Run:  .venv/bin/python benchmarks/bench_measure.py
#
# On frame 00000011_001 of the series (NAPARI_XRAY_DATA_DIR or ../shared/xray, else
# the download cache), median (min) of 50 runs:
#
#   * a line profile corner to corner (1,449 samples), 1 and 5 pixels wide:
#     napari_xray.line_profile against skimage.measure.profile_line;
#   * the statistics of three regions (a 300 × 300 rectangle, an ellipse of radii
#     150 × 220, a 7-vertex polygon): napari_xray.roi_statistics against
#     skimage.draw masks plus NumPy's figures on the masked pixels.

import os  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from machine import timed  # noqa: E402
from skimage import draw  # noqa: E402
from skimage.measure import profile_line  # noqa: E402

import napari_xray as nx  # noqa: E402

REPEATS = 50


def main() -> None:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "xray"
    if "NAPARI_XRAY_DATA_DIR" not in os.environ and default.is_dir():
        os.environ["NAPARI_XRAY_DATA_DIR"] = str(default)
    frame = nx.load_sample("frame")
    start, end = (0.0, 0.0), (1023.0, 1023.0)
    print(f"\none {frame.shape[0]}×{frame.shape[1]} {frame.dtype} frame; median (min) ms:")
    for width in (1, 5):
        ours = timed(lambda w=width: nx.line_profile(frame, start, end, width=w), REPEATS)
        theirs = timed(lambda w=width: profile_line(frame.astype(np.float64), start, end,
                                                    linewidth=w), REPEATS)  # fmt: skip
        print(f"  line profile, {width} px wide:  {ours[0] * 1e3:6.2f} ({ours[1] * 1e3:5.2f})"
              f"   skimage {theirs[0] * 1e3:6.2f}   ratio {ours[0] / theirs[0]:.2f}×"
              f"   target < 20 ms: {'met' if ours[0] < 0.02 else 'missed'}")  # fmt: skip
    rectangle = np.array([[100.5, 100.5], [100.5, 400.5], [400.5, 400.5], [400.5, 100.5]])
    ellipse = np.array([[450.0, 280.0], [450.0, 720.0], [750.0, 720.0], [750.0, 280.0]])
    polygon = np.array([[600.2, 100.3], [620.5, 300.1], [800.7, 350.2], [950.1, 250.6],
                        [900.4, 120.8], [780.9, 60.3], [650.0, 50.5]])
    shapes, kinds = [rectangle, ellipse, polygon], ["rectangle", "ellipse", "polygon"]
    ours = timed(lambda: nx.roi_statistics(frame, shapes, kinds), REPEATS)

    def numpy_way():
        for mask_pixels in (draw.polygon(rectangle[:, 0], rectangle[:, 1], frame.shape),
                            draw.ellipse(600, 500, 150, 220, shape=frame.shape),
                            draw.polygon(polygon[:, 0], polygon[:, 1], frame.shape)):
            values = frame[mask_pixels].astype(np.float64)
            values.mean(), values.std(), values.min(), values.max(), np.median(values)

    theirs = timed(numpy_way, REPEATS)
    print(f"  three regions' statistics:     {ours[0] * 1e3:6.2f} ({ours[1] * 1e3:5.2f})"
          f"   skimage.draw + NumPy {theirs[0] * 1e3:6.2f}   ratio {ours[0] / theirs[0]:.2f}×"
          f"   target < 20 ms: {'met' if ours[0] < 0.02 else 'missed'}")  # fmt: skip


if __name__ == "__main__":
    main()
