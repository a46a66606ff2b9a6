"""Size limits checked from a file's header before anything is decompressed.

Two limits, each settable per call (``read_xray(..., max_pixels=, max_bytes=)``)
or for every call without the keyword, napari's reader and batch included, by an
environment variable:

* ``max_pixels`` (``NAPARI_XRAY_MAX_PIXELS``, default 50 000 000): pixels per
  frame (width × height). Every real radiograph is below it (ChestX-ray8 frames
  are 1024², CR/DX detectors reach about 4300², large mammograms 5000 × 6000).
* ``max_bytes`` (``NAPARI_XRAY_MAX_BYTES``, default 2 000 000 000): the decoded
  size of one file, all frames and samples (PNG: width × height × channels ×
  bytes per sample; DICOM: Rows × Columns × NumberOfFrames × SamplesPerPixel ×
  BitsAllocated / 8).

A file over a limit is an :class:`~napari_xray.errors.XrayReadError` that names
the limit and how to raise it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from napari_xray.errors import XrayReadError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "ENV_MAX_BYTES",
    "ENV_MAX_PIXELS",
    "ReadLimits",
    "read_limits",
]

#: Default most pixels per frame (width × height).
DEFAULT_MAX_PIXELS = 50_000_000
#: Default most decoded bytes per file (all frames and samples).
DEFAULT_MAX_BYTES = 2_000_000_000
#: Environment variable overriding :data:`DEFAULT_MAX_PIXELS`.
ENV_MAX_PIXELS = "NAPARI_XRAY_MAX_PIXELS"
#: Environment variable overriding :data:`DEFAULT_MAX_BYTES`.
ENV_MAX_BYTES = "NAPARI_XRAY_MAX_BYTES"


@dataclass(frozen=True)
class ReadLimits:
    """The largest image a read may decode: pixels per frame and bytes per file."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES

    def check(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        frames: int = 1,
        bytes_per_pixel: float,
        source: str,
    ) -> None:
        """Refuse an image whose header claims more than the limits allow.

        ``bytes_per_pixel`` is channels × bytes per sample of the decoded data;
        ``source`` names the header fields the size comes from (for the message).

        Raises
        ------
        XrayReadError
            The frame has more than ``max_pixels`` pixels, or the file would
            decode to more than ``max_bytes`` bytes.
        """
        pixels = width * height
        if pixels > self.max_pixels:
            raise XrayReadError(
                f"{path.name}: its header ({source}) claims {width}×{height} pixels "
                f"({pixels / 1e6:.1f} megapixels), more than the limit of "
                f"{_megapixels(self.max_pixels)} megapixels per frame; it may be damaged "
                "or a decompression bomb. If you trust the file, raise the limit with "
                f"read_xray(..., max_pixels=N) or the environment variable {ENV_MAX_PIXELS}",
                path,
            )
        nbytes = math.ceil(pixels * frames * bytes_per_pixel)
        if nbytes > self.max_bytes:
            raise XrayReadError(
                f"{path.name}: its header ({source}) claims {frames} frame(s) of "
                f"{width}×{height} pixels, {nbytes / 1e9:.2f} GB decoded, more than the "
                f"limit of {self.max_bytes / 1e9:g} GB per file; it may be damaged or a "
                "decompression bomb. If you trust the file, raise the limit with "
                f"read_xray(..., max_bytes=N) or the environment variable {ENV_MAX_BYTES}",
                path,
            )


def _megapixels(value: int) -> str:
    return f"{value / 1e6:g}"


def _positive_whole_number(value, name: str) -> int:
    """``value`` as a positive int (``1e8`` and ``"100_000_000"`` are accepted)."""
    try:
        number = float(str(value).replace("_", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 1 and number.is_integer()):
        raise XrayReadError(
            f"{name}={value!r} is not a positive whole number; give e.g. 100000000 "
            "(or unset it for the default)"
        )
    return int(number)


def read_limits(max_pixels: int | None = None, max_bytes: int | None = None) -> ReadLimits:
    """The limits for one read: the keyword if given, else the environment, else the default.

    Raises
    ------
    XrayReadError
        A keyword or environment value is not a positive whole number.
    """
    values = {}
    for keyword, given, env, default in (
        ("max_pixels", max_pixels, ENV_MAX_PIXELS, DEFAULT_MAX_PIXELS),
        ("max_bytes", max_bytes, ENV_MAX_BYTES, DEFAULT_MAX_BYTES),
    ):
        if given is not None:
            values[keyword] = _positive_whole_number(given, keyword)
            continue
        configured = os.environ.get(env, "").strip()
        values[keyword] = _positive_whole_number(configured, env) if configured else default
    return ReadLimits(**values)
