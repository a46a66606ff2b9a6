"""End-to-end throughput of ``napari-xray batch``: read + all filters + Zarr write, on Dask.

Run:  .venv/bin/python benchmarks/bench_batch.py [--frames 200] [--workers 1 2]
                                                 [--store-dir DIR] [--compression lz4]

It writes ``--frames`` 1024×1024 uint8 PNGs once into ``--frames-dir`` (default
``$TMPDIR/napari-xray-bench-frames``; reused when present): the nine real
ChestX-ray8 frames (NAPARI_XRAY_DATA_DIR or ../shared/xray) — or the synthetic
phantom without them — each with fresh noise, a shift and one frame in 25 saved as
RGBA, so every PNG differs and decodes like a real one. Then, for each worker
count, it runs the batch (default filters: all six operations, float32) into a new
store under ``--store-dir`` on a LocalCluster of single-threaded worker processes
and prints

* images/s end to end (wall time from graph submission to the last result;
  the cluster's start-up is printed separately and not counted),
* images/s per core (= per single-threaded worker), and images per CPU-second
  the workers used (user + system time of the worker processes: less sensitive
  to other jobs on the machine than wall time),
* the speed-up from the first to the last worker count,
* the projected time for ChestX-ray8's 112,120 images on one core,
* where a worker's time goes (read, filters, write; ms per frame),
* the share of read, filters and write in a worker's time,
* the plain route, for the ratio: the same frames in this process on one thread as
  a script would take them (imageio decode, one engine call per filter, a Zarr
  array with Zarr's defaults, one frame a chunk), interleaved with the batch runs,
* the disk's own write speed: 4 MB files written new into the store folder,
  through the page cache, then synced to the disk, and past the page cache
  (``O_DIRECT``, as the store writes its chunks), and how many images/s of
  results each speed allows,
* the load average before and after (other jobs on the machine skew timings).

Target (the issue): ≥ 2× the plain route's images/s per core, or the line that shows
which limit stops it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHESTXRAY8_IMAGES = 112_120
FRAME_SHAPE = (1024, 1024)


def _base_frames() -> tuple[list[np.ndarray], str]:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "xray"
    folder = Path(os.environ.get("NAPARI_XRAY_DATA_DIR", default))
    names = [f"00000011_{i:03d}.png" for i in range(9)]
    if all((folder / n).exists() for n in names):
        from PIL import Image

        return [np.asarray(Image.open(folder / n).convert("L")) for n in names], "real frames"
    from napari_xray.phantom import make_phantom

    return list(make_phantom(9, FRAME_SHAPE)), "phantom"


def make_frames(folder: Path, count: int) -> str:
    """Write ``count`` distinct 1024×1024 PNGs into ``folder`` (kept if already there)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("bench_*.png"))
    if len(existing) >= count:
        return f"{len(existing)} frames reused from {folder}"
    base, source = _base_frames()
    rng = np.random.default_rng(20240607)
    t0 = time.perf_counter()
    for i in range(count):
        frame = base[i % len(base)].astype(np.int16)
        frame = np.roll(frame, (int(rng.integers(-8, 9)), int(rng.integers(-8, 9))), (0, 1))
        frame += rng.integers(-3, 4, size=frame.shape, dtype=np.int16)
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        path = folder / f"bench_{i:05d}.png"
        if i % 25 == 24:  # ChestX-ray8 holds some RGBA frames
            rgba = np.dstack([frame, frame, frame, np.full_like(frame, 255)])
            Image.fromarray(rgba, "RGBA").save(path, compress_level=6)
        else:
            Image.fromarray(frame).save(path, compress_level=6)
    seconds = time.perf_counter() - t0
    return f"{count} frames from the {source} written to {folder} in {seconds:.0f} s"


def _cpu_seconds() -> float:
    """User + system CPU time of this (worker) process and its threads."""
    import psutil

    times = psutil.Process().cpu_times()
    return times.user + times.system


def stored_specs(args, frame: np.ndarray) -> list:
    """The batch's FilterSpec of every selected filter for frames like ``frame``:
    floating-point results in ``--dtype``, the others in their own dtype (as the store)."""
    from napari_xray.batch.inputs import FilterSpec, parse_filters, parse_params
    from napari_xray.engine.operations import OPERATIONS

    keys = parse_filters(args.filters)
    params = parse_params(None, keys)
    specs = []
    for key in keys:
        kind = OPERATIONS[key](frame, **params[key]).dtype
        specs.append(FilterSpec(key, params[key], args.dtype if kind.kind == "f" else kind.name))
    return specs


def stored_bytes_per_frame(args) -> int:
    """Bytes of results one 1024² uint8 frame adds to the store (before compression)."""
    specs = stored_specs(args, np.zeros(FRAME_SHAPE, dtype=np.uint8))
    return sum(np.dtype(spec.dtype).itemsize for spec in specs) * FRAME_SHAPE[0] * FRAME_SHAPE[1]


def disk_write_speed(folder: Path, megabytes: int = 512) -> tuple[float, float, float]:
    """MB/s writing new 4 MB files into ``folder``: into the page cache, the same synced
    to the disk (``os.sync()`` included), and past the page cache as the store writes
    its chunks (``O_DIRECT``; 0 where the filesystem refuses it)."""
    from napari_xray.batch.direct_store import write_direct

    probe = folder / "disk-probe"
    probe.mkdir()
    block = np.random.default_rng(0).integers(0, 255, 4 * 2**20, dtype=np.uint8).tobytes()
    count = megabytes // 4
    try:
        began = time.perf_counter()
        for index in range(count):
            with open(probe / f"{index}", "wb") as fh:
                fh.write(block)
        cached = time.perf_counter() - began
        os.sync()
        synced = time.perf_counter() - began
        view = memoryview(block)
        began = time.perf_counter()
        direct = all(write_direct(probe / f"direct-{index}", view) for index in range(count))
        past_cache = time.perf_counter() - began
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    return count * 4 / cached, count * 4 / synced, count * 4 / past_cache if direct else 0.0


def plain_route(frames: list[Path], store: Path, args) -> tuple[float, dict[str, float]]:
    """Images/s of the plain route (see the module docstring) and its ms per frame by step."""
    import cv2
    import imageio.v3 as iio
    import zarr

    from napari_xray.engine.operations import OPERATIONS

    first = np.asarray(iio.imread(frames[0], mode="L"))
    specs = stored_specs(args, first)
    keys = [spec.key for spec in specs]
    params = {spec.key: spec.params for spec in specs}
    stored = {spec.key: np.dtype(spec.dtype) for spec in specs}
    if store.exists():
        shutil.rmtree(store)
    group = zarr.open_group(store, mode="w")
    arrays = {key: group.create_array(key, shape=(len(frames), *first.shape),
                                      chunks=(1, *first.shape), dtype=stored[key])
              for key in keys}
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    spent = {"read": 0.0, "filters": 0.0, "write": 0.0}
    try:
        began = time.perf_counter()
        for index, path in enumerate(frames):
            t0 = time.perf_counter()
            frame = np.asarray(iio.imread(path, mode="L"))
            t1 = time.perf_counter()
            results = {key: OPERATIONS[key](frame, **params[key]).astype(stored[key])
                       for key in keys}
            t2 = time.perf_counter()
            for key in keys:
                arrays[key][index] = results[key]
            t3 = time.perf_counter()
            spent["read"] += t1 - t0
            spent["filters"] += t2 - t1
            spent["write"] += t3 - t2
        rate = len(frames) / (time.perf_counter() - began)
    finally:
        cv2.setNumThreads(threads)
        shutil.rmtree(store, ignore_errors=True)
    return rate, {step: seconds * 1e3 / len(frames) for step, seconds in spent.items()}


def _shares(read: float, filters: float, write: float) -> str:
    total = read + filters + write
    return (f"read {read:.1f} ms ({read / total:.0%}), filters {filters:.1f} ms "
            f"({filters / total:.0%}), write {write:.1f} ms ({write / total:.0%})")


def run_once(frames_dir: Path, store: Path, workers: int, args) -> tuple[object, float]:
    """One batch on a fresh LocalCluster; returns (summary, CPU seconds used by the workers)."""
    from napari_xray.batch.run import dask_client, run_batch

    if store.exists():
        shutil.rmtree(store)
    t0 = time.perf_counter()
    with dask_client(workers=workers) as (client, _):
        startup = time.perf_counter() - t0
        before = client.run(_cpu_seconds)
        summary = run_batch(
            [frames_dir],
            store,
            filters=args.filters,
            float_dtype=args.dtype,
            compression=args.compression,
            frames_per_task=args.frames_per_task,
            client=client,
            progress=False,
            log=lambda message: None,
        )
        after = client.run(_cpu_seconds)
    summary.startup_seconds = startup
    shutil.rmtree(store, ignore_errors=True)
    return summary, sum(after[w] - before[w] for w in after)


def main(argv=None) -> int:
    """Generate the frames once, run the batch for each worker count, print the figures."""
    from machine import print_fresh_memory, print_machine

    print_machine(("numpy", "scipy", "opencv-python-headless", "zarr", "dask", "distributed"))
    print_fresh_memory()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200, help="number of PNGs (≥ 200)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--frames-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "napari-xray-bench-frames")
    parser.add_argument("--store-dir", type=Path, default=None,
                        help="where the stores are written (default: a temporary folder "
                        "beside the frames; try /dev/shm to leave the disk out)")
    parser.add_argument("--filters", default=None, help="default: all six operations")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16"))
    parser.add_argument("--compression", default="none", choices=("none", "lz4", "zstd"))
    parser.add_argument("--frames-per-task", type=int, default=None,
                        help="default: the batch's (1/32 of the frames, at most 64)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per worker count, interleaved; the fastest is reported")
    args = parser.parse_args(argv)

    print(make_frames(args.frames_dir, args.frames), flush=True)
    frames = sorted(args.frames_dir.glob("bench_*.png"))[: args.frames]
    run_dir = args.frames_dir.parent / "napari-xray-bench-frames-subset"
    if len(frames) < len(list(args.frames_dir.glob("bench_*.png"))):
        run_dir.mkdir(exist_ok=True)
        for f in frames:
            link = run_dir / f.name
            if not link.exists():
                link.symlink_to(f)
        frames_dir = run_dir
    else:
        frames_dir = args.frames_dir
    store_root = Path(tempfile.mkdtemp(prefix="napari-xray-bench-", dir=args.store_dir))
    load_before = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores; load average before: "
        + ", ".join(f"{v:.2f}" for v in load_before)
        + f"; stores in {store_root}; filters: {args.filters or 'all'}, {args.dtype}, "
        f"{args.compression} compression",
        flush=True,
    )
    rates = {}
    frame_mb = stored_bytes_per_frame(args) / 1e6
    try:
        cached, synced, direct = disk_write_speed(store_root)
        print(f"disk: new 4 MB files in {store_root.parent}: {cached:,.0f} MB/s into the page "
              f"cache, {synced:,.0f} MB/s synced to the disk, {direct:,.0f} MB/s past the page "
              f"cache (O_DIRECT, the store's way); at {frame_mb:.1f} MB of results a frame: "
              f"{cached / frame_mb:.1f}, {synced / frame_mb:.1f} and {direct / frame_mb:.1f} "
              "images/s", flush=True)
        best: dict[int, tuple] = {}
        plain: tuple[float, dict] | None = None
        for _ in range(args.repeats):  # interleaved, so a busy spell hits every count alike
            attempt = plain_route(frames, store_root / "plain.zarr", args)
            if plain is None or attempt[0] > plain[0]:
                plain = attempt
            for workers in args.workers:
                summary, cpu = run_once(frames_dir, store_root / f"w{workers}.zarr", workers,
                                        args)
                if workers not in best or summary.seconds < best[workers][0].seconds:
                    best[workers] = (summary, cpu)
        for workers in args.workers:
            summary, cpu = best[workers]
            rates[workers] = summary.images_per_second
            per = 1e3 / summary.processed
            print(
                f"{workers} worker(s): {summary.processed} images in {summary.seconds:.2f} s = "
                f"{summary.images_per_second:.1f} images/s, "
                f"{summary.images_per_second / workers:.1f} images/s per core; "
                f"{summary.processed / cpu:.1f} images per CPU-second of the workers "
                f"(cluster start {summary.startup_seconds:.1f} s, not counted)\n"
                f"    per frame in a worker: "
                + _shares(summary.read_seconds * per, summary.filter_seconds * per,
                          summary.write_seconds * per),
                flush=True,
            )
        plain_rate, plain_ms = plain
        print(f"plain route (this process, one thread): {plain_rate:.1f} images/s; per frame: "
              + _shares(plain_ms["read"], plain_ms["filters"], plain_ms["write"]), flush=True)
    finally:
        shutil.rmtree(store_root, ignore_errors=True)
    first, last = args.workers[0], args.workers[-1]
    per_core = rates[first] / first
    print(f"speed-up {first} → {last} workers: {rates[last] / rates[first]:.2f}×")
    print(
        f"projected for ChestX-ray8 ({CHESTXRAY8_IMAGES:,} images): "
        f"{CHESTXRAY8_IMAGES / per_core / 3600:.2f} h on one core "
        f"({CHESTXRAY8_IMAGES / rates[last] / 3600:.2f} h on {last} workers here)"
    )
    ceiling = compute_ceiling(frames[:30], args)
    print(
        f"ceiling without Dask and without writing (this process, one thread): read + filters "
        f"{1e3 / ceiling:.1f} ms per frame = {ceiling:.1f} images/s per core"
    )
    ratio = per_core / plain_rate
    print(f"target ≥ 2× the plain route per core: {ratio:.2f}× — "
          f"{'met' if ratio >= 2 else 'MISSED'}; the disk alone allows "
          f"{direct / frame_mb:.1f} images/s past the page cache, read + filters "
          f"{ceiling:.1f} per core")
    print("load average after: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    return 0


def compute_ceiling(frames: list[Path], args) -> float:
    """Frames per second of read + all filters alone, in this process, OpenCV on one thread."""
    import cv2

    from napari_xray.batch.worker import filter_frame, read_frame

    specs = stored_specs(args, read_frame(frames[0], (1024, 1024), np.uint8))
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        t0 = time.perf_counter()
        for path in frames:
            filter_frame(read_frame(path, (1024, 1024), np.uint8), specs)
        return len(frames) / (time.perf_counter() - t0)
    finally:
        cv2.setNumThreads(threads)


if __name__ == "__main__":
    sys.exit(main())
