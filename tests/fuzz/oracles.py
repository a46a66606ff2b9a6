"""Independent answers for fuzzed files: what a correct reader must return, or ``None``.

Nothing here uses napari-xray. ``png_expected`` walks the chunks itself, checks
every critical CRC and inflates the image data with :mod:`zlib`; only a PNG
whose structure is intact and whose image data is complete is decoded (by
Pillow, or for 16-bit colour by a small NumPy unfilter), and reduced to
grayscale with Pillow's ``convert("L")`` rule. ``dicom_expected`` is pydicom's
own ``pixel_array`` with the rescale, the MONOCHROME1 inversion over the possible
range, and RGB reduced to the same luma. ``None`` means the file is damaged:
any pixels returned for it are wrong.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_MAX_OWN_DECODE = 128 * 128  # pixels the NumPy unfilter handles (16-bit colour seeds)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Pillow's ``convert("L")``: ``(R·19595 + G·38470 + B·7471 + 32768) >> 16``, in uint64."""
    r, g, b = (rgb[..., i].astype(np.uint64) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 32768) >> 16).astype(rgb.dtype)


# ------------------------------------------------------------------------------- PNG


def _passes(width: int, height: int, interlace: int) -> list[tuple[int, int]]:
    if not interlace:
        return [(width, height)]
    sizes = []
    for x0, y0, dx, dy in _ADAM7:
        w, h = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if w and h:
            sizes.append((w, h))
    return sizes


def _critical_parts(data: bytes):
    """``(ihdr fields, PLTE bytes, IDAT bytes)`` if every critical chunk is intact, else None."""
    if not data.startswith(SIGNATURE):
        return None
    offset, ihdr, plte, idat, ended = len(SIGNATURE), None, None, [], False
    while offset + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        end = offset + 12 + length
        if end > len(data):
            return None
        body = data[offset + 4 : end - 4]
        crc_ok = zlib.crc32(body) == struct.unpack_from(">I", data, end - 4)[0]
        if kind in (b"IHDR", b"PLTE", b"IDAT", b"IEND") and not crc_ok:
            return None
        if ihdr is None:
            if kind != b"IHDR" or length != 13:
                return None
            ihdr = struct.unpack(">IIBBBBB", body[4:])
        elif kind == b"IDAT":
            idat.append(body[4:])
        elif kind == b"PLTE":
            plte = body[4:]
        elif kind == b"IEND":
            ended = True
            break
        elif not kind[0] & 0x20:  # an unknown critical chunk
            return None
        offset = end
    if ihdr is None or not idat or not ended:
        return None
    return ihdr, plte, b"".join(idat)


def _inflate(idat: bytes, needed: int) -> bytes | None:
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(idat, needed)
    except zlib.error:
        return None
    return raw if len(raw) == needed else None


def _unfilter(raw: bytes, width: int, height: int, bpp: int, row_bytes: int) -> np.ndarray | None:
    """Undo the PNG row filters of one pass with plain loops (small images only)."""
    out = np.zeros((height, row_bytes), np.int64)
    position = 0
    for y in range(height):
        kind = raw[position]
        line = np.frombuffer(raw, np.uint8, row_bytes, position + 1).astype(np.int64)
        position += 1 + row_bytes
        prior = out[y - 1] if y else np.zeros(row_bytes, np.int64)
        row = out[y]
        for x in range(row_bytes):
            a = row[x - bpp] if x >= bpp else 0
            b = prior[x]
            c = prior[x - bpp] if x >= bpp else 0
            if kind == 0:
                predictor = 0
            elif kind == 1:
                predictor = a
            elif kind == 2:
                predictor = b
            elif kind == 3:
                predictor = (a + b) // 2
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
            else:
                return None
            row[x] = (line[x] + predictor) & 0xFF
    return out.astype(np.uint8)


def _own_decode_16bit(raw: bytes, width: int, height: int, channels: int, interlace: int):
    """A 16-bit PNG's samples as ``(H, W, channels)`` uint16 (no interlace support)."""
    if interlace or width * height > _MAX_OWN_DECODE:
        return "unknown"
    bpp = 2 * channels
    rows = _unfilter(raw, width, height, bpp, width * bpp)
    if rows is None:
        return None
    return rows.view(">u2").reshape(height, width, channels).astype(np.uint16)


def png_expected(data: bytes):
    """The grayscale frame a correct reader returns for PNG ``data``.

    Returns an array, ``None`` (the image data is damaged or incomplete: no
    pixels are right) or ``"unknown"`` (intact, but beyond what this oracle decodes).
    """
    parts = _critical_parts(data)
    if parts is None:
        return None
    (width, height, depth, color, compression, filtering, interlace), plte, idat = parts
    if color not in _BIT_DEPTHS or depth not in _BIT_DEPTHS[color]:
        return None
    if compression or filtering or interlace > 1 or not width or not height:
        return None
    if color == 3 and not plte:
        return None
    channels = _CHANNELS[color]
    needed, filters = 0, []
    for w, h in _passes(width, height, interlace):
        row = (w * channels * depth + 7) // 8
        filters += [needed + y * (1 + row) for y in range(h)]
        needed += h * (1 + row)
    raw = _inflate(idat, needed)
    if raw is None or any(raw[i] > 4 for i in filters):
        return None
    if depth == 16 and color != 0:
        samples = _own_decode_16bit(raw, width, height, channels, interlace)
        if not isinstance(samples, np.ndarray):
            return samples
        return samples[..., 0] if color == 4 else luma(samples)
    from PIL import Image

    clean = bytearray(SIGNATURE)
    for kind, body in ((b"IHDR", data[16:29]), (b"PLTE", plte), (b"IDAT", idat), (b"IEND", b"")):
        if body is None or (kind == b"PLTE" and color != 3):
            continue
        clean += struct.pack(">I", len(body)) + kind + body
        clean += struct.pack(">I", zlib.crc32(kind + body))
    try:
        with Image.open(io.BytesIO(bytes(clean))) as image:
            if image.mode in ("L", "I;16", "I;16B"):
                frame = np.asarray(image)
            else:
                frame = np.asarray(image.convert("L"))
    except Exception:
        return "unknown"
    return frame.astype(np.uint16 if depth == 16 else np.uint8)


# ----------------------------------------------------------------------------- DICOM


def dicom_expected(path) -> np.ndarray | None:
    """What a correct reader returns for the DICOM ``path``, as float64; None if pydicom fails."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
            pixels = np.asarray(ds.pixel_array)
        except Exception:
            return None
    if int(ds.get("SamplesPerPixel", 1) or 1) == 3:
        return luma(pixels).astype(np.float64)
    bits_stored = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    values = pixels.astype(np.float64)
    if signed:
        lo, hi = -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
    else:
        lo, hi = 0, 2**bits_stored - 1
    values = np.where((values < lo) | (values > hi), np.nan, values)  # bits above BitsStored
    if np.isnan(values).any():
        mask = (1 << bits_stored) - 1
        values = (
            (pixels.astype(np.int64) & mask).astype(np.float64)
            if not signed
            else np.clip(pixels.astype(np.float64), lo, hi)
        )
    slope = float(ds.get("RescaleSlope", 1) if ds.get("RescaleSlope") not in (None, "") else 1)
    intercept = float(
        ds.get("RescaleIntercept", 0) if ds.get("RescaleIntercept") not in (None, "") else 0
    )
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        return None
    values = values * slope + intercept
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        ends = (lo * slope + intercept, hi * slope + intercept)
        values = min(ends) + max(ends) - values
    return values
