"""Speed and memory of the filter engine against the tutorial and the exact SciPy reference.

Run:  .venv/bin/python benchmarks/bench_engine.py  [--repeats N]

In one process, on the nine real ChestX-ray8 frames (NAPARI_XRAY_DATA_DIR or
../shared/xray, else the download cache), it times the tutorial's comparison set
(LoG σ=1, Gaussian gradient σ=2, Sobel, Fourier-Prewitt, both masks) three ways:

  (a) the tutorial's literal code, applied frame by frame (uint8 in, its own
      dtypes; the 3-D call on the stack would be slower still);
  (b) scipy.ndimage in float64, frame by frame (the exact reference);
  (c) this engine (float32, OpenCV fast path, frames in parallel threads);

and prints a/c and b/c, each single filter on one 1024×1024 frame, Canny
against skimage.feature.canny, and the peak memory of (c) against the size of
its input plus results. Targets: a/c ≥ 30; each filter ≤ 5 ms per frame
(Canny ≤ 10 ms); peak ≤ 1.5 × (input + results).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.fft
from scipy import ndimage

from napari_xray.compare import run_comparison
from napari_xray.engine.operations import COMPARISON, OPERATIONS

BENCH_KEYS = ("log", "gradient", "sobel", "prewitt", "mask")
PANELS = tuple(p for p in COMPARISON if p.key is None or p.key in BENCH_KEYS)


def load_frames() -> np.ndarray:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "xray"
    if "NAPARI_XRAY_DATA_DIR" not in os.environ and default.is_dir():
        os.environ["NAPARI_XRAY_DATA_DIR"] = str(default)
    from napari_xray.samples import load_sample

    return load_sample("series")


def tutorial_literal(xray_image):
    """The tutorial's code, verbatim in substance, on one uint8 frame."""
    xray_image_laplace_gaussian = ndimage.gaussian_laplace(xray_image, sigma=1)
    x_ray_image_gaussian_gradient = ndimage.gaussian_gradient_magnitude(xray_image, sigma=2)
    x_sobel = ndimage.sobel(xray_image, axis=0)
    y_sobel = ndimage.sobel(xray_image, axis=1)
    xray_image_sobel = np.hypot(x_sobel, y_sobel)
    xray_image_sobel *= 255.0 / np.max(xray_image_sobel)
    fourier_gaussian = ndimage.fourier_gaussian(xray_image, sigma=0.05)
    x_prewitt = ndimage.prewitt(fourier_gaussian, axis=0)
    y_prewitt = ndimage.prewitt(fourier_gaussian, axis=1)
    xray_image_canny = np.hypot(x_prewitt, y_prewitt)
    xray_image_canny *= 255.0 / np.max(xray_image_canny)
    xray_image_mask_noisy = np.where(xray_image > 150, xray_image, 0)
    xray_image_mask_less_noisy = np.where(xray_image > 150, 1, 0)
    return (
        xray_image_laplace_gaussian,
        x_ray_image_gaussian_gradient,
        xray_image_sobel,
        xray_image_canny,
        xray_image_mask_noisy,
        xray_image_mask_less_noisy,
    )


def _normalize64(x):
    span = x.max() - x.min()
    return np.zeros_like(x) if span == 0 else 255.0 * (x - x.min()) / span


def scipy_float64_reference(frame):
    """The same set done right in float64 with scipy.ndimage: the exact reference."""
    f = frame.astype(np.float64)
    log = ndimage.gaussian_laplace(f, 1.0)
    gradient = ndimage.gaussian_gradient_magnitude(f, 2.0)
    sobel = _normalize64(np.hypot(ndimage.sobel(f, 0), ndimage.sobel(f, 1)))
    smoothed = scipy.fft.irfft2(
        ndimage.fourier_gaussian(scipy.fft.rfft2(f), 1.0, n=f.shape[1]), s=f.shape
    )
    prewitt = _normalize64(np.hypot(ndimage.prewitt(smoothed, 0), ndimage.prewitt(smoothed, 1)))
    return log, gradient, sobel, prewitt, np.where(frame > 150, frame, 0), frame > 150


def engine(stack):
    return run_comparison(stack, PANELS)


def median_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def peak_memory(function):
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    stack = load_frames()
    frame = stack[1]
    print(f"input: {stack.shape} {stack.dtype}, {os.cpu_count()} CPU(s)")

    # First, before any warm-up, so the per-thread scratch buffers are counted too.
    peak, results = peak_memory(lambda: engine(stack))
    unique = {id(r): r for _, r in results}
    result_bytes = sum(r.nbytes for r in unique.values() if r is not stack)
    budget = stack.nbytes + result_bytes
    print("peak memory of (c) (tracemalloc, NumPy/OpenCV arrays):")
    print(
        f"  input {stack.nbytes / 1e6:.1f} MB + results {result_bytes / 1e6:.1f} MB "
        f"= {budget / 1e6:.1f} MB; peak allocated {peak / 1e6:.1f} MB "
        f"= {(peak + stack.nbytes) / budget:.2f} × (input + results)  (target ≤ 1.5)"
    )

    tutorial_s, _ = median_time(
        lambda: [tutorial_literal(f) for f in stack], max(2, args.repeats // 2)
    )
    reference_s, _ = median_time(
        lambda: [scipy_float64_reference(f) for f in stack], max(2, args.repeats // 2)
    )
    engine(stack)  # warm caches (kernels, FFT plans, thread pool)
    engine_s, engine_best = median_time(lambda: engine(stack), args.repeats)

    print(
        "\ncomparison set on nine frames (LoG, Gaussian gradient, Sobel, Fourier-Prewitt, masks):"
    )
    print(f"  (a) tutorial's literal code      {tutorial_s * 1e3:8.1f} ms")
    print(f"  (b) scipy.ndimage float64        {reference_s * 1e3:8.1f} ms")
    best = f"(best {engine_best * 1e3:.1f})"
    print(f"  (c) napari-xray engine           {engine_s * 1e3:8.1f} ms  {best}")
    print(f"  a/c = {tutorial_s / engine_s:6.1f}×   (target ≥ 30)")
    print(f"  b/c = {reference_s / engine_s:6.1f}×")

    print("\nsingle filter on one 1024×1024 uint8 frame (median of 30):")
    from skimage.feature import canny as skimage_canny

    for key, operation in OPERATIONS.items():
        operation(frame)
        seconds, _ = median_time(lambda op=operation: op(frame), 30)
        target = 10.0 if key == "canny" else 5.0
        mark = "ok" if seconds * 1e3 <= target else "over"
        print(f"  {key:9s} {seconds * 1e3:7.2f} ms   (target ≤ {target:g} ms: {mark})")
    sk_seconds, _ = median_time(lambda: skimage_canny(frame, 2.0, mode="reflect"), 10)
    ours, _ = median_time(lambda: OPERATIONS["canny"](frame), 10)
    print(
        f"  canny vs skimage.feature.canny: {sk_seconds * 1e3:.1f} ms / {ours * 1e3:.1f} ms "
        f"= {sk_seconds / ours:.1f}×"
    )


if __name__ == "__main__":
    main()
