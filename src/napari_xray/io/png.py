"""PNG files: read the header (size, bit depth, colour mode), then decode to grayscale.

8-bit PNGs give ``uint8`` and 16-bit grayscale PNGs ``uint16`` with exact values.
Colour PNGs are reduced to ITU-R 601-2 luma in Pillow's fixed point
(:func:`rgb_to_luma`); 16-bit colour PNGs, which Pillow would truncate to 8 bits,
are decoded with OpenCV so they keep 16 bits. Pillow and OpenCV are imported
only when a file is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_xray.errors import XrayReadError

__all__ = ["PngHeader", "decode_png", "probe_png", "rgb_to_luma"]

# Pillow's fixed-point ITU-R 601-2 luma weights (sum 65536), used by convert("L").
_LUMA_R, _LUMA_G, _LUMA_B = 19595, 38470, 7471


@dataclass(frozen=True)
class PngHeader:
    """What a PNG's header says: the decoded frame and how to get it."""

    shape: tuple[int, int]  # (H, W)
    dtype: np.dtype  # of the decoded, grayscale frame
    original_mode: str | None = None  # the colour mode, when converted to grayscale
    convert: str | None = None  # None | "pillow" (to 8-bit "L") | "cv2-16bit"


def rgb_to_luma(rgb: np.ndarray) -> np.ndarray:
    """Pillow's fixed-point ITU-R 601-2 luma of ``(..., 3+)`` uint8/uint16 RGB.

    ``L = (R·19595 + G·38470 + B·7471 + 32768) >> 16``; channels past the third
    (alpha) are ignored. The result has the input's dtype.
    """
    r = rgb[..., 0].astype(np.uint32)
    g = rgb[..., 1].astype(np.uint32)
    b = rgb[..., 2].astype(np.uint32)
    # max 65535 * 65536 + 32768 < 2**32: no overflow for 16-bit input
    luma = (r * _LUMA_R + g * _LUMA_G + b * _LUMA_B + 32768) >> 16
    return luma.astype(rgb.dtype)


def _open_image(path: Path):
    """``PIL.Image.open`` with every failure turned into an XrayReadError."""
    from PIL import Image

    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise XrayReadError(
            f"{path.name} claims an image larger than Pillow's safety limit "
            f"({exc}); it may be a corrupt file or a decompression bomb. If you trust "
            "it, raise PIL.Image.MAX_IMAGE_PIXELS before reading it",
            path,
        ) from exc
    except FileNotFoundError as exc:
        raise XrayReadError(f"{path} does not exist; check the path", path) from exc
    except IsADirectoryError as exc:
        raise XrayReadError(f"{path} is a folder, not an image file", path) from exc
    except PermissionError as exc:
        raise XrayReadError(
            f"no permission to read {path}; check the file's permissions", path
        ) from exc
    except OSError as exc:  # includes PIL.UnidentifiedImageError
        raise XrayReadError(
            f"{path.name} is not a readable image (Pillow: {exc}); it may be empty, "
            "damaged or another kind of file with an image extension — re-download or "
            "re-export it",
            path,
        ) from exc


def _png_rawmode(im) -> str:
    """The decoder's raw mode, e.g. ``"RGB;16B"`` for a 16-bit RGB PNG ("" if unknown)."""
    try:
        args = im.tile[0][3]
    except (IndexError, TypeError, AttributeError):
        return ""
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def probe_png(path: Path) -> PngHeader:
    """Read the header of a PNG file (nothing is decoded).

    Raises
    ------
    XrayReadError
        The file is missing, unreadable, not an image or a decompression bomb.
    """
    with _open_image(path) as im:
        mode, (width, height), rawmode = im.mode, im.size, _png_rawmode(im)
    shape = (height, width)
    base_raw = rawmode.split(";")[0]
    if rawmode.endswith(("16B", "16")) and base_raw in ("RGB", "RGBA", "LA"):
        # Pillow would keep only the high byte of a 16-bit colour PNG.
        return PngHeader(shape, np.dtype(np.uint16), f"{base_raw};16", convert="cv2-16bit")
    if mode.startswith("I;16"):
        return PngHeader(shape, np.dtype(np.uint16))
    if mode == "I":
        dtype = np.uint16 if rawmode.startswith("I;16") else np.int32
        return PngHeader(shape, np.dtype(dtype))
    if mode == "L":
        return PngHeader(shape, np.dtype(np.uint8))
    if mode == "F":
        return PngHeader(shape, np.dtype(np.float32))
    # 1, P, PA, LA, La, RGB, RGBA, RGBa, RGBX, CMYK, YCbCr, ...: 8-bit grayscale via Pillow.
    return PngHeader(shape, np.dtype(np.uint8), mode, convert="pillow")


def decode_png(path: Path, header: PngHeader, out: np.ndarray) -> None:
    """Decode the PNG ``path`` (probed as ``header``) into ``out``, a 2-D view.

    Raises
    ------
    XrayReadError
        The file is truncated or damaged, or (16-bit colour) OpenCV is missing.
    """
    if header.convert == "cv2-16bit":
        out[...] = _decode_16bit_colour(path)
        return
    try:
        with _open_image(path) as im:
            if header.convert == "pillow":
                try:
                    im = im.convert("L")
                except ValueError:  # modes without a direct path to "L"
                    im = im.convert("RGBA").convert("L")
            frame = np.asarray(im)
    except XrayReadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        truncated = "truncated" in str(exc)
        raise XrayReadError(
            f"{path.name} is {'truncated' if truncated else 'damaged'} and cannot be "
            f"decoded (Pillow: {exc}); re-download or re-export it, or remove it from "
            "the folder",
            path,
        ) from exc
    if frame.shape != out.shape:  # header and data disagree (should not happen)
        raise XrayReadError(
            f"{path.name} decoded to shape {frame.shape}, expected {out.shape}", path
        )
    out[...] = frame


def _decode_16bit_colour(path: Path) -> np.ndarray:
    """A 16-bit colour PNG as uint16 luma, decoded with OpenCV."""
    try:
        import cv2
    except ImportError as exc:
        raise XrayReadError(
            f"{path.name} is a 16-bit colour PNG; reading it without losing precision "
            "needs OpenCV ('pip install opencv-python-headless'), or convert it to "
            "16-bit grayscale first",
            path,
        ) from exc
    buffer = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint16 or image.ndim != 3:
        raise XrayReadError(
            f"{path.name} is a 16-bit colour PNG that OpenCV cannot decode; it may be "
            "truncated or damaged — re-download or re-export it",
            path,
        )
    # OpenCV gives BGR(A); gray+alpha comes as BGRA with B = G = R.
    return rgb_to_luma(image[..., 2::-1])
