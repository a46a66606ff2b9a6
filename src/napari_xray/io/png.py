"""PNG files: check the header and chunk structure, then decode to grayscale with libpng.

The header (IHDR) and the chunk structure are read and checked first
(:mod:`napari_xray.io.png_chunks`), the size limits applied, then the critical
chunks, every CRC checked, are decoded with libpng through
``cv2.imdecode(..., IMREAD_UNCHANGED)``, which refuses image data that ends
early or does not inflate. When it refuses, the image data is inflated in Python
to say what is wrong. Nothing damaged is ever returned as zeros or changed pixels.

The grayscale rules: 8-bit gray (and 1/2/4-bit, scaled to 0–255) gives ``uint8``,
16-bit gray ``uint16`` with exact values. RGB, RGBA, gray+alpha, palette and 1-bit
images are reduced to ITU-R 601-2 luma in Pillow's fixed point
(:func:`rgb_to_luma`, what Pillow's ``convert("L")`` gives); 16-bit colour keeps
16 bits (``uint16``). Alpha is dropped. OpenCV is imported only when a file is
decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_xray.errors import XrayReadError
from napari_xray.io.limits import ReadLimits
from napari_xray.io.paths import open_for_reading
from napari_xray.io.png_chunks import (
    Ihdr,
    diagnose_image_data,
    image_data,
    read_image_chunks,
    scan_png,
)

__all__ = ["PngHeader", "decode_png", "probe_png", "rgb_to_luma"]

# Pillow's fixed-point ITU-R 601-2 luma weights (sum 65536), used by convert("L").
_LUMA_R, _LUMA_G, _LUMA_B = 19595, 38470, 7471
# Channels of libpng's output through OpenCV (palette → BGR, gray+alpha → BGRA).
_DECODED_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}
# What each colour type is called in metadata["converted_to_grayscale"] (Pillow's names).
_MODE_NAMES = {2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}


@dataclass(frozen=True)
class PngHeader:
    """What a PNG's header says: the decoded frame and how it was converted."""

    shape: tuple[int, int]  # (H, W)
    dtype: np.dtype  # of the decoded, grayscale frame
    original_mode: str | None = None  # the colour mode, when converted to grayscale
    ihdr: Ihdr | None = None


def rgb_to_luma(rgb: np.ndarray) -> np.ndarray:
    """Pillow's fixed-point ITU-R 601-2 luma of ``(..., 3+)`` unsigned-integer RGB.

    ``L = (R·19595 + G·38470 + B·7471 + 32768) >> 16``; channels past the third
    (alpha) are ignored. The result has the input's dtype (exact for uint8,
    uint16 and uint32 input).
    """
    wide = np.uint32 if rgb.dtype.itemsize <= 2 else np.uint64
    r = rgb[..., 0].astype(wide)
    g = rgb[..., 1].astype(wide)
    b = rgb[..., 2].astype(wide)
    # uint16: max 65535 * 65536 + 32768 < 2**32; uint32 input uses uint64
    r *= _LUMA_R
    g *= _LUMA_G
    b *= _LUMA_B
    r += g
    r += b
    r += 32768
    r >>= 16
    return r.astype(rgb.dtype)


def _original_mode(ihdr: Ihdr) -> str | None:
    if ihdr.color_type == 0:
        return "1" if ihdr.bit_depth == 1 else None
    name = _MODE_NAMES[ihdr.color_type]
    return f"{name};16" if ihdr.bit_depth == 16 else name


def _scan(path: Path, limits: ReadLimits | None):
    def check_size(ihdr: Ihdr) -> None:
        if limits is not None:
            limits.check(
                path,
                width=ihdr.width,
                height=ihdr.height,
                bytes_per_pixel=_DECODED_CHANNELS[ihdr.color_type]
                * (2 if ihdr.bit_depth == 16 else 1),
                source="IHDR",
            )

    with open_for_reading(path) as fh:
        return scan_png(fh, path, check_size)


def probe_png(path: Path, limits: ReadLimits | None = None) -> PngHeader:
    """Read and check the header and chunk structure of a PNG file (nothing is inflated).

    Raises
    ------
    XrayReadError
        The file is missing, unreadable, not a PNG, truncated, structurally
        damaged, or larger than ``limits``.
    """
    layout = _scan(path, limits)
    ihdr = layout.ihdr
    dtype = np.dtype(np.uint16 if ihdr.bit_depth == 16 else np.uint8)
    return PngHeader((ihdr.height, ihdr.width), dtype, _original_mode(ihdr), ihdr)


def _libpng_decode(path: Path, png: bytes) -> np.ndarray | None:
    """``cv2.imdecode(..., IMREAD_UNCHANGED)`` of a minimal PNG; ``None`` if refused."""
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - OpenCV is a dependency
        raise XrayReadError(
            f"reading {path.name} needs OpenCV; install it with "
            "'pip install opencv-python-headless'",
            path,
        ) from exc
    try:
        return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


def decode_png(path: Path, header: PngHeader, out: np.ndarray) -> None:
    """Decode the PNG ``path`` (probed as ``header``) into ``out``, a 2-D view.

    Raises
    ------
    XrayReadError
        The file is truncated or damaged (a CRC mismatch, image data that ends
        early or does not inflate, a bad filter byte) or changed since it was probed.
    """
    with open_for_reading(path) as fh:
        layout = scan_png(fh, path)
        if header.ihdr is not None and layout.ihdr != header.ihdr:
            raise XrayReadError(f"{path.name} changed while it was being read; read it again", path)
        png = read_image_chunks(fh, path, layout)
    image = _libpng_decode(path, png)
    ihdr = layout.ihdr
    if image is None:
        reason = diagnose_image_data(ihdr, image_data(png))
        raise XrayReadError(f"{path.name} {reason}", path)
    expected_dtype = np.uint16 if ihdr.bit_depth == 16 else np.uint8
    if image.shape[:2] != out.shape or image.dtype != expected_dtype:
        raise XrayReadError(
            f"{path.name} decoded to {image.shape} {image.dtype}, not the {out.shape} "
            f"{np.dtype(expected_dtype)} its header describes; convert it to a plain PNG",
            path,
        )
    if image.ndim == 2:
        out[...] = image
    elif ihdr.color_type == 4:  # gray+alpha comes as BGRA with B = G = R
        out[...] = image[..., 0]
    else:  # OpenCV gives BGR(A)
        out[...] = rgb_to_luma(image[..., 2::-1])
