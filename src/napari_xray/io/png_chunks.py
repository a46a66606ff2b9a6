"""The chunk structure of a PNG file, checked before and after decoding.

:func:`scan_png` walks the chunk headers by seeking (ancillary chunks such as
text, ICC profiles or EXIF are skipped unread, whatever their size) and checks
the structure: signature, IHDR (length, CRC, sane fields), where every chunk
ends, consecutive IDAT chunks, an IEND. :func:`read_image_chunks` reads the
critical chunks (IHDR, PLTE, IDAT) with their CRCs checked and returns them as
a minimal PNG for the decoder. When the decoder refuses that buffer,
:func:`diagnose_image_data` inflates the image data to say exactly what is
wrong (how many rows it holds, a damaged zlib stream, a bad filter byte).

Only the standard library is used.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from napari_xray.errors import XrayReadError

__all__ = [
    "PNG_SIGNATURE",
    "Ihdr",
    "PngLayout",
    "diagnose_image_data",
    "image_data",
    "read_image_chunks",
    "scan_png",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IEND_CHUNK = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_MAX_LENGTH = 2**31 - 1  # PNG's limit for chunk lengths, widths and heights
# A real PNG has at most tens of thousands of chunks; the walk stops long before it gets slow.
_MAX_CHUNKS = 1_000_000
# Adam7: (x start, y start, x step, y step) of the seven passes.
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
# Other file kinds that turn up with a .png name, by their first bytes.
_OTHER_FORMATS = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
    (b"<", "a text/HTML file (an error page saved by a download?)"),
)


@dataclass(frozen=True)
class Ihdr:
    """The IHDR fields that decide the decoded image."""

    width: int
    height: int
    bit_depth: int
    color_type: int
    interlace: int

    @property
    def channels(self) -> int:
        """Samples per pixel in the file (a palette index counts as one)."""
        return _CHANNELS[self.color_type]

    def passes(self) -> list[tuple[int, int]]:
        """``(width, height)`` of each non-empty pass (one pass unless Adam7-interlaced)."""
        if not self.interlace:
            return [(self.width, self.height)]
        sizes = []
        for x0, y0, dx, dy in _ADAM7:
            w = (self.width - x0 + dx - 1) // dx
            h = (self.height - y0 + dy - 1) // dy
            if w > 0 and h > 0:
                sizes.append((w, h))
        return sizes

    def row_bytes(self, width: int) -> int:
        """Bytes of one filtered row of ``width`` pixels, without its filter byte."""
        return (width * self.channels * self.bit_depth + 7) // 8

    @property
    def raw_size(self) -> int:
        """Bytes the IDAT stream inflates to: every row with its filter byte."""
        return sum(h * (1 + self.row_bytes(w)) for w, h in self.passes())


@dataclass(frozen=True)
class _Chunk:
    kind: bytes
    offset: int  # of the length field
    length: int


@dataclass(frozen=True)
class PngLayout:
    """Where a PNG's critical chunks are, after the structure was checked."""

    ihdr: Ihdr
    chunks: tuple[_Chunk, ...]  # IHDR, PLTE (palette images only) and the IDAT chunks
    idat_bytes: int


def _damaged(path: Path, what: str) -> XrayReadError:
    return XrayReadError(f"{path.name} is damaged: {what}; re-download or re-export it", path)


def _truncated(path: Path, what: str) -> XrayReadError:
    return XrayReadError(f"{path.name} is truncated: {what}; re-download or re-export it", path)


def _check_signature(path: Path, head: bytes) -> None:
    if head == PNG_SIGNATURE:
        return
    if not head:
        what = "it is empty (0 bytes)"
    elif PNG_SIGNATURE.startswith(head):
        raise _truncated(path, f"it ends after {len(head)} bytes, inside the PNG signature")
    else:
        kind = next((name for magic, name in _OTHER_FORMATS if head.startswith(magic)), None)
        what = f"it is {kind}, not a PNG" if kind else "it does not start with the PNG signature"
    raise XrayReadError(
        f"{path.name} is not a readable image: {what}; it may be damaged or another kind "
        "of file with a .png name — re-download or re-export it",
        path,
    )


def _parse_ihdr(path: Path, chunk: _Chunk, body: bytes) -> Ihdr:
    """Check the IHDR chunk (``body`` = type, data and CRC) and return its fields."""
    if chunk.length != 13:
        raise _damaged(path, f"its IHDR chunk holds {chunk.length} bytes instead of 13")
    data, (crc,) = body[4:17], struct.unpack(">I", body[17:21])
    if zlib.crc32(body[:17]) != crc:
        raise _damaged(path, "the CRC of its IHDR chunk (the image size and type) does not match")
    width, height, depth, color, compression, filtering, interlace = struct.unpack(">IIBBBBB", data)
    if not (0 < width <= _MAX_LENGTH and 0 < height <= _MAX_LENGTH):
        raise _damaged(path, f"its IHDR claims an image of {width}×{height} pixels")
    if color not in _BIT_DEPTHS or depth not in _BIT_DEPTHS[color]:
        raise _damaged(path, f"its IHDR claims colour type {color} with bit depth {depth}")
    if compression or filtering or interlace > 1:
        raise _damaged(
            path,
            f"its IHDR claims compression {compression}, filter method {filtering}, "
            f"interlace {interlace} (PNG knows only 0, 0 and 0/1)",
        )
    return Ihdr(width, height, depth, color, interlace)


def _is_chunk_type(kind: bytes) -> bool:
    return len(kind) == 4 and all(65 <= c <= 90 or 97 <= c <= 122 for c in kind)


def scan_png(fh: BinaryIO, path: Path, check_size=None) -> PngLayout:
    """Walk the chunk headers of an open PNG file and check its structure.

    ``check_size(ihdr)`` is called as soon as the IHDR is read (before any other
    chunk), so a size limit refuses a decompression bomb at once.

    Raises
    ------
    XrayReadError
        Not a PNG, truncated anywhere before IEND, a damaged IHDR, a chunk
        that is not one, an unknown critical chunk, IDAT chunks split apart, no
        image data, a palette image without a palette, or far more image data
        than the image can hold.
    """
    size = os.fstat(fh.fileno()).st_size
    fh.seek(0)
    _check_signature(path, fh.read(len(PNG_SIGNATURE)))
    offset, count = len(PNG_SIGNATURE), 0
    ihdr: Ihdr | None = None
    kept: list[_Chunk] = []
    idat_seen = idat_done = False
    while True:
        fh.seek(offset)
        head = fh.read(8)
        if len(head) < 8:
            raise _truncated(path, f"it ends at byte {size} without an IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        name = kind.decode("latin-1")
        if not _is_chunk_type(kind):
            raise _damaged(path, f"the bytes at {offset} are not a PNG chunk (type {kind!r})")
        if length > _MAX_LENGTH:
            raise _damaged(path, f"its {name} chunk at byte {offset} claims {length} bytes")
        end = offset + 12 + length
        if end > size:
            raise _truncated(
                path,
                f"its {name} chunk at byte {offset} needs {length} bytes but the file ends "
                f"at byte {size}",
            )
        chunk = _Chunk(kind, offset, length)
        count += 1
        if count > _MAX_CHUNKS:
            raise _damaged(path, f"it holds more than {_MAX_CHUNKS} chunks")
        if ihdr is None:
            if kind != b"IHDR":
                raise _damaged(path, f"its first chunk is {name}, not IHDR")
            fh.seek(offset + 4)
            ihdr = _parse_ihdr(path, chunk, fh.read(21))
            if check_size is not None:
                check_size(ihdr)
            kept.append(chunk)
        elif kind == b"IEND":
            fh.seek(offset + 4)
            if length or fh.read(8) != _IEND_CHUNK[4:]:
                raise _damaged(path, f"its end marker (the IEND chunk at byte {offset}) is altered")
            break
        elif kind == b"IDAT":
            if idat_done:
                raise _damaged(path, f"its IDAT chunks are split apart (again at byte {offset})")
            kept.append(chunk)
            idat_seen = True
        elif kind == b"IHDR":
            raise _damaged(path, f"it holds a second IHDR chunk at byte {offset}")
        elif kind == b"PLTE":
            if idat_seen:
                raise _damaged(path, f"its palette (PLTE) at byte {offset} follows the image data")
            if any(c.kind == b"PLTE" for c in kept):
                raise _damaged(path, f"it holds a second palette (PLTE) at byte {offset}")
            if ihdr.color_type == 3:
                if length % 3 or not 3 <= length <= 768:
                    raise _damaged(path, f"its palette (PLTE) holds {length} bytes")
                kept.append(chunk)
        elif not kind[0] & 0x20:  # an upper-case first letter: critical
            raise XrayReadError(
                f"{path.name} holds a critical chunk {name!r} (at byte {offset}) that PNG "
                "decoders do not know; it may be damaged — re-export it as a plain PNG",
                path,
            )
        idat_done = idat_done or (idat_seen and kind != b"IDAT")
        offset = end
    idat = [c for c in kept if c.kind == b"IDAT"]
    if not idat:
        raise _damaged(path, "it holds no image data (no IDAT chunk)")
    if ihdr.color_type == 3 and not any(c.kind == b"PLTE" for c in kept):
        raise _damaged(path, "it is a palette image without a palette (PLTE chunk)")
    idat_bytes = sum(c.length for c in idat)
    most = ihdr.raw_size + ihdr.raw_size // 64 + 65536  # stored blocks and zlib framing
    if idat_bytes > most:
        raise _damaged(
            path,
            f"it holds {idat_bytes} bytes of image data, more than a {ihdr.width}×"
            f"{ihdr.height} image can need ({most})",
        )
    return PngLayout(ihdr, tuple(kept), idat_bytes)


def read_image_chunks(fh: BinaryIO, path: Path, layout: PngLayout) -> bytes:
    """The critical chunks of ``layout``, CRC-checked, as a minimal PNG (ancillary dropped).

    Raises
    ------
    XrayReadError
        A chunk's CRC does not match its data, or the file changed since it was scanned.
    """
    parts = [PNG_SIGNATURE]
    for chunk in layout.chunks:
        fh.seek(chunk.offset)
        raw = fh.read(12 + chunk.length)
        if len(raw) != 12 + chunk.length or raw[4:8] != chunk.kind:
            raise XrayReadError(f"{path.name} changed while it was being read; read it again", path)
        view = memoryview(raw)
        if zlib.crc32(view[4:-4]) != struct.unpack(">I", view[-4:])[0]:
            what = "image data" if chunk.kind == b"IDAT" else chunk.kind.decode()
            raise _damaged(
                path,
                f"the CRC of its {chunk.kind.decode()} chunk at byte {chunk.offset} does not "
                f"match its data (the {what} was altered)",
            )
        parts.append(raw)
    parts.append(_IEND_CHUNK)
    return b"".join(parts)


def image_data(png: bytes) -> Iterator[memoryview]:
    """The data of each IDAT chunk of a PNG made by :func:`read_image_chunks`."""
    view, offset = memoryview(png), len(PNG_SIGNATURE)
    while offset + 8 <= len(png):
        length, kind = struct.unpack_from(">I4s", png, offset)
        if kind == b"IDAT":
            yield view[offset + 8 : offset + 8 + length]
        offset += 12 + length


def _row_starts(ihdr: Ihdr) -> Iterator[tuple[int, int, int]]:
    """``(pass index, row, offset of its filter byte)`` in the inflated image data."""
    position = 0
    for index, (width, height) in enumerate(ihdr.passes()):
        step = 1 + ihdr.row_bytes(width)
        for row in range(height):
            yield index, row, position
            position += step


def diagnose_image_data(ihdr: Ihdr, idat: Iterator[memoryview]) -> str:
    """Why the image data cannot be decoded, as the end of a sentence after the file name.

    The data is inflated piece by piece (never more than the image needs) and
    each row's filter byte is checked.
    """
    inflater = zlib.decompressobj()
    needed, total = ihdr.raw_size, 0
    starts = _row_starts(ihdr)
    next_start = next(starts, None)

    def how_far() -> str:
        if ihdr.interlace:
            return f"{total} of the {needed} bytes of interlaced image data"
        return f"{total // (1 + ihdr.row_bytes(ihdr.width))} of {ihdr.height} rows"

    try:
        for piece in idat:
            while piece and total < needed and not inflater.eof:
                out = inflater.decompress(piece, min(needed - total, 1 << 20))
                piece = inflater.unconsumed_tail
                while next_start is not None and next_start[2] < total + len(out):
                    pass_index, row, start = next_start
                    filter_type = out[start - total]
                    if filter_type > 4:
                        where = f"row {row}" + (
                            f" of pass {pass_index + 1}" if ihdr.interlace else ""
                        )
                        return (
                            f"is damaged: {where} has filter type {filter_type} (PNG knows 0–4) "
                            "— re-download or re-export it"
                        )
                    next_start = next(starts, None)
                total += len(out)
                if not out:
                    break
            if total >= needed or inflater.eof:
                break
    except zlib.error as exc:
        return (
            f"is damaged: its compressed image data is broken after {how_far()} "
            f"(zlib: {exc}) — re-download or re-export it"
        )
    if total < needed:
        cut = "" if inflater.eof else " (the compressed stream is cut short)"
        return (
            f"is damaged: its image data ends after {how_far()}{cut} — re-download or re-export it"
        )
    return (
        "could not be decoded by OpenCV's PNG decoder although its chunks and image data "
        "are complete (OpenCV's own size limit is OPENCV_IO_MAX_IMAGE_PIXELS); convert "
        "it to a plain 8- or 16-bit PNG"
    )
