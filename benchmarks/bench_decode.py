"""PNG decoding on the nine real frames: Pillow against libpng (through OpenCV).

Pillow never checks the IDAT CRC and decodes image data that ends early as zero
rows; libpng reports both. This prints the time per frame of each decoder, and
of a CRC walk over the file, measured in the same process.

    python benchmarks/bench_decode.py [FOLDER]   (default: ../shared/xray)
"""

from __future__ import annotations

import io
import statistics
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
from machine import print_machine
from PIL import Image

REPEATS = 7


def _median_ms(function, blobs) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for blob in blobs:
            function(blob)
        times.append((time.perf_counter() - start) / len(blobs) * 1e3)
    return statistics.median(times)


def main() -> None:
    """Print the machine, then each decoder's median time per frame and the ratios."""
    default = Path(__file__).resolve().parents[2] / "shared" / "xray"
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    blobs = [path.read_bytes() for path in sorted(folder.glob("*.png"))]
    if not blobs:
        raise SystemExit(f"no PNG files in {folder}")
    print_machine()
    print(f"{len(blobs)} frames from {folder.resolve()}, median of {REPEATS} runs")

    def pillow(blob):
        return np.asarray(Image.open(io.BytesIO(blob)))

    def libpng(blob):
        return cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)

    for blob in blobs:  # both decoders give the same pixels
        np.testing.assert_array_equal(pillow(blob), libpng(blob))
    pillow_ms = _median_ms(pillow, blobs)
    libpng_ms = _median_ms(libpng, blobs)
    crc_ms = _median_ms(zlib.crc32, blobs)
    print(f"Pillow (no CRC check)          {pillow_ms:6.2f} ms/frame")
    print(
        f"libpng via cv2.imdecode        {libpng_ms:6.2f} ms/frame  Pillow/libpng = "
        f"{pillow_ms / libpng_ms:.2f}"
    )
    print(
        f"CRC-32 of the whole file       {crc_ms:6.2f} ms/frame  "
        f"({crc_ms / pillow_ms:.1%} of Pillow's decode)"
    )


if __name__ == "__main__":
    main()
