"""What every benchmark prints first: the CPU, its vector flags and the library versions.

Figures from different hosts must never be mixed; ratios measured in one run are
what the README quotes.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from importlib.metadata import PackageNotFoundError, version

VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "amx_tile")


def cpu_description() -> tuple[str, list[str]]:
    """The CPU's model name and which of :data:`VECTOR_FLAGS` it has (from /proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    return model, [flag for flag in VECTOR_FLAGS if flag in flags]


def print_machine(packages=("numpy", "scipy", "opencv-python-headless", "pillow")) -> None:
    """Print the CPU, its vector flags, the core count and the versions of ``packages``."""
    model, flags = cpu_description()
    print(f"CPU: {model}; {os.cpu_count()} logical cores; flags: {' '.join(flags) or 'none'}")
    versions = []
    for package in packages:
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    print(f"Python {platform.python_version()}; " + ", ".join(versions))


def fresh_memory_rates(megabytes: int = 128) -> tuple[float, float]:
    """MB/s of the first write to newly mapped memory, and of writing it again.

    On an ordinary machine the two differ by a small factor (page faults and
    zeroing); on a VM whose host hands out memory on first touch the first write
    can be 10–50× slower, and every figure that touches new memory (a first
    result buffer, a new file in the page cache) pays it.
    """
    import time

    import numpy as np

    size = megabytes * 1024 * 1024
    block = np.empty(size, dtype=np.uint8)  # mapped, not yet touched
    began = time.perf_counter()
    block.fill(1)
    first = time.perf_counter() - began
    began = time.perf_counter()
    block.fill(2)
    again = time.perf_counter() - began
    return megabytes / first, megabytes / again


def print_fresh_memory() -> None:
    """Print :func:`fresh_memory_rates` on one line."""
    first, again = fresh_memory_rates()
    print(f"memory: first write to new pages {first:,.0f} MB/s, rewrite {again:,.0f} MB/s "
          f"({again / first:.0f}×)")


def timed(function, repeats: int) -> tuple[float, float]:
    """(median, minimum) wall time of ``function()`` in seconds, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)
