from machine import print_machine; print_machine()  # noqa: E702, I001  # fmt: skip

# Speed of the filter engine against the tutorial, SciPy and the machine's own limits.
#
# Run:  .venv/bin/python benchmarks/bench_engine.py [--repeats N]
#
# In one process, on the nine real ChestX-ray8 frames (NAPARI_XRAY_DATA_DIR or
# ../shared/xray, else the download cache), it first probes the machine:
#
#   * FMA rate: float32 matrix products on cache-resident 256×256 blocks
#     (OpenBLAS pinned to one thread; 1 and 2 Python threads), in multiply-adds/s;
#   * memory: a copy of a 96 MB array (bytes read + written per second, 1 and 2
#     threads), of one 1 MB and one 4 MB frame (in the cache), a write-only fill,
#     and the first touch of freshly allocated memory;
#
# then times the comparison set (LoG σ=1, Gaussian gradient σ=2, Sobel,
# Fourier-Prewitt σ=1, both masks) on the nine frames:
#
#   (a) the tutorial's literal code, frame by frame (uint8 in, its own dtypes);
#   (b) scipy.ndimage in float64, frame by frame (the exact reference);
#   (d) scipy.ndimage in float32, the frames over a 2-thread pool;
#   (c) this engine: one fused pass (engine.pipeline.run_operations), 1 thread
#       (OpenCV's own thread pool off: one core) and 2, into fresh outputs and
#       into reused ones;
#
# and each filter alone on one 1024×1024 frame on one core (OpenCV's pool off). Beside every engine
# figure it prints its floor: the larger of its multiply-adds over the FMA rate
# and the bytes it must read and write over the memory rate (both measured
# above: the 96 MB copy for the nine frames, first touch for fresh outputs, the
# frame-sized copy for one frame), and the ratio to it. Multiply-adds are
# counted for the straightforward separable algorithm (a kernel of n taps costs
# n per pixel and pass; a real FFT of length N costs 1.25·log2(N) per point;
# Canny's suppression ~10 per pixel). Timings are medians of many repeats, with
# the minimum; the load average is printed before and after (other jobs on the
# machine skew them), and the probes run before and after the timings (the
# floors use the best rate seen). No figure here is a test.
#
# Targets (issue 11): a/c ≥ 25 (moonshot 30), d/c ≥ 12, 1 → 2 threads ≥ 1.7;
# Fourier-Prewitt ≤ 8 ms and Canny ≤ 10 ms per frame on one core; every filter
# ≤ 2.5 × its floor.

import argparse  # noqa: E402
import os  # noqa: E402

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy: the FMA probe's BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")

import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import scipy.fft  # noqa: E402
from machine import timed  # noqa: E402
from scipy import ndimage  # noqa: E402

from napari_xray.engine.operations import COMPARISON, OPERATIONS  # noqa: E402
from napari_xray.engine.pipeline import run_operations  # noqa: E402

BENCH_KEYS = ("log", "gradient", "sobel", "prewitt", "mask")
COMPARISON_SET = list(
    {p.signature: (p.key, dict(p.params)) for p in COMPARISON if p.key in BENCH_KEYS}.values()
)
MB = 1e6


def load_frames() -> np.ndarray:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "xray"
    if "NAPARI_XRAY_DATA_DIR" not in os.environ and default.is_dir():
        os.environ["NAPARI_XRAY_DATA_DIR"] = str(default)
    from napari_xray.samples import load_sample

    return load_sample("series")


# --------------------------------------------------------------------------- baselines


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


def _normalize(x):
    span = x.max() - x.min()
    return np.zeros_like(x) if span == 0 else 255.0 * (x - x.min()) / span


def scipy_reference(frame, dtype=np.float64):
    """The same set done right with scipy.ndimage in ``dtype`` (float64: the exact reference)."""
    f = frame.astype(dtype)
    log = ndimage.gaussian_laplace(f, 1.0)
    gradient = ndimage.gaussian_gradient_magnitude(f, 2.0)
    sobel = _normalize(np.hypot(ndimage.sobel(f, 0), ndimage.sobel(f, 1)))
    smoothed = scipy.fft.irfft2(
        ndimage.fourier_gaussian(scipy.fft.rfft2(f), 1.0, n=f.shape[1]), s=f.shape
    ).astype(dtype, copy=False)
    prewitt = _normalize(np.hypot(ndimage.prewitt(smoothed, 0), ndimage.prewitt(smoothed, 1)))
    return log, gradient, sobel, prewitt, np.where(frame > 150, frame, 0), frame > 150


# --------------------------------------------------------------------------- timing


def timed_together(functions: dict, repeats: int) -> dict:
    """:func:`timed` for several functions, run in turn in each round.

    Interleaving spreads any load from other jobs over all of them alike.
    """
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def on_one_core(function):
    """``function`` run with OpenCV's own thread pool off: one thread means one core."""

    def run():
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return function()
        finally:
            cv2.setNumThreads(threads)

    return run


def in_threads(threads: int, work) -> float:
    """Seconds for ``threads`` threads each running ``work(index)`` once, started together."""
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: None, range(threads)))  # start the threads first
        start = time.perf_counter()
        list(pool.map(work, range(threads)))
        return time.perf_counter() - start


# --------------------------------------------------------------------------- machine probes


def fma_rate(threads: int, repeats: int = 5) -> float:
    """Multiply-adds per second of float32 matrix products on cache-resident blocks."""
    n, count = 256, 60
    rng = np.random.default_rng(0)
    blocks = [
        tuple(rng.random((n, n), np.float32) for _ in range(3))
        for _ in range(threads)
    ]  # fmt: skip

    def work(index):
        a, b, c = blocks[index]
        for _ in range(count):
            np.matmul(a, b, out=c)

    best = min(in_threads(threads, work) for _ in range(repeats))
    return threads * count * n**3 / best


def copy_rate(threads: int, size: int = 96 * 2**20, repeats: int = 7) -> float:
    """Bytes read plus written per second copying a ``size``-byte array, split over threads."""
    source = np.ones(size, np.uint8)
    target = np.zeros(size, np.uint8)
    parts = np.array_split(np.arange(size), threads)
    slices = [slice(int(p[0]), int(p[-1]) + 1) for p in parts]
    best = min(
        in_threads(threads, lambda i: np.copyto(target[slices[i]], source[slices[i]]))
        for _ in range(repeats)
    )
    return 2 * size / best


def fill_rate(size: int = 96 * 2**20, repeats: int = 7) -> float:
    """Bytes written per second filling an array whose pages are already mapped."""
    target = np.zeros(size, np.uint8)
    return size / timed(lambda: target.fill(1), repeats)[1]


def first_touch_rate(size: int = 96 * 2**20, repeats: int = 7) -> float:
    """Bytes per second writing freshly allocated memory (the kernel maps and zeroes it)."""
    return size / timed(lambda: np.empty(size, np.uint8).fill(1), repeats)[1]


# --------------------------------------------------------------------------- floors


#: Multiply-adds per pixel of each operation's straightforward algorithm (see the header).
def multiply_adds(key: str, params: dict, width: int) -> float:
    def taps(sigma):
        return 2 * int(4.0 * sigma + 0.5) + 1

    fft = 1.25 * math.log2(width)
    if key == "log":
        return 2 * 2 * taps(params.get("sigma", 1.0)) + 1
    if key == "gradient":
        return 2 * 2 * taps(params.get("sigma", 2.0)) + 2
    if key == "sobel":
        return 2 * 2 * 3 + 2 + 2
    if key == "prewitt":
        return 4 * fft + 2 + 2 * 2 * 3 + 2 + 2
    if key == "canny":
        return 2 * taps(params.get("sigma", 2.0)) + 2 * 2 * 3 + 2 + 10
    return 0.0  # masks: a comparison per pixel


def result_bytes(key: str, params: dict, input_itemsize: int) -> int:
    """Bytes per pixel of the operation's result."""
    if key == "canny" or params.get("mode") == "binary":
        return 1
    if key == "mask":
        return input_itemsize
    return 4


def floor_seconds(ops, pixels, input_itemsize, width, fma, read_rate, write_rate):
    """(compute, memory) floor in seconds of ``ops`` on ``pixels`` pixels.

    Compute: the multiply-adds over the FMA rate. Memory: the input read once
    and every result written once: bytes over ``read_rate`` and ``write_rate``
    (bytes per second).
    """
    macs = sum(multiply_adds(key, params, width) for key, params in ops) * pixels
    written = sum(result_bytes(k, p, input_itemsize) for k, p in ops) * pixels
    return macs / fma, input_itemsize * pixels / read_rate + written / write_rate


def floor_text(seconds: float, compute: float, memory: float) -> str:
    floor = max(compute, memory)
    bound = "compute" if compute >= memory else "memory"
    return f"floor {floor * 1e3:6.2f} ms ({bound}), {seconds / floor:4.1f}× floor"


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description="Speed of the napari-xray filter engine.")
    parser.add_argument("--repeats", type=int, default=15, help="repeats of the engine's runs")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cv2_threads = cv2.getNumThreads()

    stack = load_frames()
    frame = stack[1]
    pixels, width = frame.size, frame.shape[1]
    print(f"input: {stack.shape} {stack.dtype}; OpenCV threads {cv2_threads}")

    # First, before any warm-up, so that the threads' scratch buffers are counted too.
    tracemalloc.start()
    results = run_operations(stack, COMPARISON_SET)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    budget = stack.nbytes + sum(r.nbytes for r in results)
    print(
        f"peak memory of one fused run (tracemalloc): {peak / MB:.0f} MB allocated for "
        f"{budget / MB:.0f} MB of input + results = {(peak + stack.nbytes) / budget:.2f} × "
        "(input + results)"
    )
    del results

    def probe():
        return {
            "fma": {n: fma_rate(n) for n in (1, 2)},
            "copy": {n: copy_rate(n) for n in (1, 2)},
            "frame copy": {size: copy_rate(1, size * 2**20, repeats=50) for size in (1, 4)},
            "fill": fill_rate(),
            "touch": first_touch_rate(),
        }

    def print_probe(found, when):
        fma, copy, frame_copy = found["fma"], found["copy"], found["frame copy"]
        print(f"\nmachine probes {when} (best of several runs):")
        print(
            f"  FMA (float32 matmul, 256² blocks):  {fma[1] / 1e9:6.1f} G multiply-adds/s on 1 "
            f"thread, {fma[2] / 1e9:6.1f} on 2 ({fma[2] / fma[1]:.2f}×)"
        )
        print(
            f"  copy 96 MB (read + write):          {copy[1] / 1e9:6.1f} GB/s on 1 thread, "
            f"{copy[2] / 1e9:6.1f} on 2 ({copy[2] / copy[1]:.2f}×)"
        )
        print(
            f"  copy 1 MB / 4 MB (one frame):       {frame_copy[1] / 1e9:6.1f} / "
            f"{frame_copy[4] / 1e9:.1f} GB/s (in the cache)"
        )
        print(f"  fill (write, pages mapped):         {found['fill'] / 1e9:6.1f} GB/s")
        print(f"  first touch of fresh memory:        {found['touch'] / 1e9:6.1f} GB/s")

    before = probe()
    print_probe(before, "before the runs")

    # ----------------------------------------------------------------- time everything
    slow = max(2, args.repeats // 5)
    tutorial = timed(lambda: [tutorial_literal(f) for f in stack], slow)
    reference = timed(lambda: [scipy_reference(f) for f in stack], slow)
    with ThreadPoolExecutor(2) as pool:
        scipy32 = timed(
            lambda: list(pool.map(lambda f: scipy_reference(f, np.float32), stack)), slow
        )
    outputs = run_operations(stack, COMPARISON_SET)
    engine = timed_together(
        {
            "fresh 1": on_one_core(lambda: run_operations(stack, COMPARISON_SET, threads=1)),
            "fresh 2": lambda: run_operations(stack, COMPARISON_SET, threads=2),
            "reused 1": on_one_core(
                lambda: run_operations(stack, COMPARISON_SET, out=outputs, threads=1)
            ),
            "reused 2": lambda: run_operations(stack, COMPARISON_SET, out=outputs, threads=2),
            "separate": lambda: [OPERATIONS[k](stack, **p) for k, p in COMPARISON_SET],
        },
        args.repeats,
    )
    singles = [(key, OPERATIONS[key].defaults()) for key in OPERATIONS]
    singles.append(("mask", {"threshold": 150.0, "mode": "binary"}))
    single_timings = []
    for key, params in singles:
        params = {name: value for name, value in params.items() if value is not None}
        out = run_operations(frame, [(key, params)])
        timings = timed_together(
            {
                "public": on_one_core(lambda k=key, p=params: OPERATIONS[k](frame, **p)),
                "engine": on_one_core(
                    lambda k=key, p=params, o=out: run_operations(frame, [(k, p)], out=o)
                ),
            },
            4 * args.repeats,
        )
        single_timings.append((key, params, timings["public"], timings["engine"]))
    from skimage.feature import canny as skimage_canny

    skimage = timed(lambda: skimage_canny(frame, 2.0, mode="reflect"), args.repeats)
    ours = timed(on_one_core(lambda: OPERATIONS["canny"](frame)), args.repeats)

    after = probe()
    print_probe(after, "after the runs")
    # The floors use the best rate seen: the machine's speed drifts with other jobs.
    fma = {n: max(before["fma"][n], after["fma"][n]) for n in (1, 2)}
    copy = {n: max(before["copy"][n], after["copy"][n]) for n in (1, 2)}
    frame_copy = {n: max(before["frame copy"][n], after["frame copy"][n]) for n in (1, 4)}
    touch = max(before["touch"], after["touch"])

    # ----------------------------------------------------------------- the set on nine frames
    fresh = {n: engine[f"fresh {n}"] for n in (1, 2)}
    reused = {n: engine[f"reused {n}"] for n in (1, 2)}
    set_pixels = stack.size
    names = ", ".join(key if key != "mask" else f"mask {p['mode']}" for key, p in COMPARISON_SET)
    print(f"\ncomparison set on nine frames ({names}); median (min) ms:")

    def line(label, timing, extra=""):
        print(f"  {label:44s} {timing[0] * 1e3:8.1f} ({timing[1] * 1e3:7.1f}){extra}")

    line("(a) tutorial's literal code", tutorial)
    line("(b) scipy.ndimage float64", reference)
    line("(d) scipy.ndimage float32, 2 threads", scipy32)
    for n in (1, 2):
        # A copy moves each byte twice (read and write): copy[n] / 2 per direction.
        compute, memory = floor_seconds(
            COMPARISON_SET, set_pixels, stack.itemsize, width, fma[n], copy[n] / 2, copy[n] / 2
        )
        touch_memory = floor_seconds(
            COMPARISON_SET, set_pixels, stack.itemsize, width, fma[n], copy[n] / 2, touch
        )[1]
        line(f"(c) engine, {n} thread(s), fresh outputs", fresh[n],
             "  " + floor_text(fresh[n][0], compute, touch_memory))  # fmt: skip
        line(f"(c) engine, {n} thread(s), reused outputs", reused[n],
             "  " + floor_text(reused[n][0], compute, memory))  # fmt: skip
    line("    engine, one call per operation", engine["separate"])
    c = fresh[2][0]
    print(f"  a/c = {tutorial[0] / c:5.1f}×  (target ≥ 25, moonshot 30; c = 2 threads, fresh)")
    print(f"  b/c = {reference[0] / c:5.1f}×")
    print(f"  d/c = {scipy32[0] / c:5.1f}×  (target ≥ 12)")
    print(
        f"  1 → 2 threads: {fresh[1][0] / fresh[2][0]:.2f}× fresh, "
        f"{reused[1][0] / reused[2][0]:.2f}× reused  (target ≥ 1.7; the probes scaled "
        f"{before['fma'][2] / before['fma'][1]:.2f}× / {after['fma'][2] / after['fma'][1]:.2f}× "
        f"(FMA), {before['copy'][2] / before['copy'][1]:.2f}× / "
        f"{after['copy'][2] / after['copy'][1]:.2f}× (copy) before / after)"
    )

    # ----------------------------------------------------------------- one filter, one frame
    print(f"\neach filter on one {frame.shape[0]}×{width} {frame.dtype} frame, one core "
          "(OpenCV's thread pool off), median (min) ms:")  # fmt: skip
    targets = {"prewitt": 8.0, "canny": 10.0}
    for key, params, public, engine_only in single_timings:
        # One frame's input and result stay in the cache from run to run: the copy
        # probe of the size of the result gives the memory rate.
        size = 1 if result_bytes(key, params, frame.itemsize) == 1 else 4
        rate = frame_copy[size] / 2
        compute, memory = floor_seconds([(key, params)], pixels, frame.itemsize, width,
                                        fma[1], rate, rate)  # fmt: skip
        label = OPERATIONS[key].describe(params)
        target = f"  target ≤ {targets[key]:g} ms" if key in targets else ""
        print(
            f"  {label:28s} {public[0] * 1e3:6.2f} ({public[1] * 1e3:5.2f});  "
            f"into a reused output {engine_only[0] * 1e3:6.2f} ({engine_only[1] * 1e3:5.2f})  "
            f"{floor_text(engine_only[0], compute, memory)}{target}"
        )
    print(f"  canny vs skimage.feature.canny: {skimage[0] * 1e3:.1f} / {ours[0] * 1e3:.1f} ms "
          f"= {skimage[0] / ours[0]:.1f}×")  # fmt: skip
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
