"""What every benchmark prints first: the CPU, its vector flags and the library versions.

Figures from different hosts must never be mixed; ratios measured in one run are
what the README quotes.
"""

from __future__ import annotations

import os
import platform
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
