"""The byte structure of a DICOM file: read the header and the pixel data with bounds.

:func:`read_header` parses the data set up to the pixel data (a deflated data
set is inflated only that far, in growing steps, never whole) and locates the
pixel data element, so its size can be checked before it is read.
:func:`read_dataset_with_pixels` then reads exactly up to the end of the pixel
data: bytes after it (zero padding, trailing garbage) are never parsed. pydicom
is imported only when a file is read.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from napari_xray.errors import XrayReadError

__all__ = ["DEFLATED", "DicomFile", "PixelElement", "read_dataset_with_pixels", "read_header"]

#: Deflated Explicit VR Little Endian: the whole data set is deflate-compressed.
DEFLATED = "1.2.840.10008.1.2.1.99"
_EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float, Double Float
_LONG_VRS = frozenset(
    (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")
)
_ITEM, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE0DD
_MAX_META_BYTES = 1 << 20  # the file meta group
_MAX_HEADER_BYTES = 64 << 20  # an inflated data set before its pixel data
_FIRST_INFLATE = 256 << 10
_UNDEFINED = 0xFFFFFFFF


@dataclass(frozen=True)
class PixelElement:
    """Where the pixel data element is (in the file, or in the inflated data set)."""

    tag: int
    offset: int  # of the element's tag
    value_offset: int
    length: int | None  # None: undefined length (encapsulated, compressed frames)
    end: int  # first byte after the element (after the sequence delimiter if encapsulated)


@dataclass
class DicomFile:
    """A DICOM header read without its pixel data, and where the pixel data is."""

    dataset: Any  # pydicom Dataset (no pixel data)
    transfer_syntax: str | None  # as the file meta says (None: not stated)
    pixel: PixelElement | None
    dataset_offset: int | None  # where the data set starts in the file (None: no file meta)
    first_group: tuple[int, int] | None  # the first data set element's group, read LE and BE
    file_size: int


def _pydicom():
    try:
        import pydicom
    except ImportError as exc:  # pragma: no cover - pydicom is a dependency
        raise XrayReadError(
            "reading DICOM needs pydicom; install it with 'pip install pydicom'"
        ) from exc
    return pydicom


def _damaged(path: Path, what: str) -> XrayReadError:
    return XrayReadError(f"{path.name} is damaged: {what}; re-download or re-export it", path)


def _file_meta(fh: BinaryIO, path: Path) -> tuple[str | None, int] | None:
    """``(transfer syntax UID, data set offset)`` from the file meta group; ``None`` if no DICM."""
    fh.seek(128)
    if fh.read(4) != b"DICM":
        return None
    offset, syntax = 132, None
    while True:
        fh.seek(offset)
        head = fh.read(8)
        if len(head) < 8 or struct.unpack_from("<H", head)[0] != 2:
            return syntax, offset
        element = struct.unpack_from("<H", head, 2)[0]
        if head[4:6] in _LONG_VRS:
            tail = fh.read(4)
            if len(tail) < 4:
                return syntax, offset
            length, value_offset = struct.unpack("<I", tail)[0], offset + 12
        else:
            length, value_offset = struct.unpack_from("<H", head, 6)[0], offset + 8
        if element == 0x0010:
            fh.seek(value_offset)
            syntax = fh.read(min(length, 64)).rstrip(b"\0 ").decode("ascii", "replace")
        offset = value_offset + length
        if offset > _MAX_META_BYTES:
            raise _damaged(path, f"its file meta information is over {_MAX_META_BYTES} bytes")


def _first_group(fh: BinaryIO, offset: int) -> tuple[int, int] | None:
    fh.seek(offset)
    raw = fh.read(2)
    return (struct.unpack("<H", raw)[0], struct.unpack(">H", raw)[0]) if len(raw) == 2 else None


def _element_at(
    read, offset: int, size: int, little: bool, implicit: bool, path: Path
) -> PixelElement | None:
    """The pixel data element whose tag is at ``offset`` (``read(pos, n)`` reads bytes)."""
    order = "<" if little else ">"
    head = read(offset, 12)
    if len(head) < 8:
        return None
    group, element = struct.unpack_from(order + "HH", head)
    tag = (group << 16) | element
    if tag not in _PIXEL_TAGS:
        return None
    if implicit:
        length, value_offset = struct.unpack_from(order + "I", head, 4)[0], offset + 8
    elif head[4:6] in _LONG_VRS:
        if len(head) < 12:
            return None
        length, value_offset = struct.unpack_from(order + "I", head, 8)[0], offset + 12
    else:
        length, value_offset = struct.unpack_from(order + "H", head, 6)[0], offset + 8
    if length != _UNDEFINED:
        return PixelElement(tag, offset, value_offset, length, value_offset + length)
    position = value_offset  # encapsulated: items until the sequence delimiter
    while True:
        item = read(position, 8)
        if len(item) < 8:
            raise XrayReadError(
                f"{path.name} is truncated: its compressed pixel data ends without the "
                "sequence delimiter; re-download or re-export it",
                path,
            )
        group, element, item_length = struct.unpack("<HHI", item)
        item_tag = (group << 16) | element
        if item_tag == _SEQUENCE_END:
            return PixelElement(tag, offset, value_offset, None, position + 8)
        if item_tag != _ITEM or item_length == _UNDEFINED:
            raise _damaged(
                path, f"its compressed pixel data holds no valid item at byte {position}"
            )
        position += 8 + item_length
        if position > size:
            raise XrayReadError(
                f"{path.name} is truncated: a compressed frame needs {item_length} bytes "
                "beyond the end of the file; re-download or re-export it",
                path,
            )


def _encoding(dataset) -> tuple[bool, bool]:
    """``(implicit VR, little endian)`` the data set was read with."""
    encoding = getattr(dataset, "original_encoding", None)
    if encoding and encoding[0] is not None:
        return bool(encoding[0]), bool(encoding[1])
    return bool(dataset.is_implicit_VR), bool(dataset.is_little_endian)  # pydicom 2


def _reader(fh: BinaryIO):
    def read(position: int, count: int) -> bytes:
        fh.seek(position)
        return fh.read(count)

    return read


class _Inflater:
    """The inflated data set of a deflated file, grown on demand and never past a bound."""

    def __init__(self, fh: BinaryIO, offset: int, path: Path):
        fh.seek(offset)
        self._fh, self._path = fh, path
        self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        self._pending = b""
        self.data = bytearray()

    @property
    def finished(self) -> bool:
        return self._zlib.eof or (not self._pending and self._fh is None)

    def grow_to(self, size: int) -> None:
        """Inflate until ``data`` holds ``size`` bytes or the stream ends."""
        while len(self.data) < size and not self.finished:
            if not self._pending:
                self._pending = self._fh.read(1 << 16)
                if not self._pending:
                    self._fh = None
                    break
            try:
                self.data += self._zlib.decompress(self._pending, size - len(self.data))
            except zlib.error as exc:
                raise _damaged(
                    self._path, f"its deflated data set does not inflate ({exc})"
                ) from exc
            self._pending = self._zlib.unconsumed_tail


def _parse_inflated(data: bytes, stop_at_pixels: bool):
    """pydicom's data set from inflated bytes; ``(dataset, pixel tag, vr, length, position)``."""
    _pydicom()
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    found: list[tuple[int, str | None, int]] = []

    def at_pixels(tag, vr, length) -> bool:
        if stop_at_pixels and int(tag) in _PIXEL_TAGS:
            found.append((int(tag), vr, length))
            return True
        return False

    stream = DicomBytesIO(data)
    with warnings.catch_warnings():  # a partial prefix ends mid-element: expected here
        warnings.simplefilter("ignore")
        try:
            dataset = read_dataset(stream, False, True, stop_when=at_pixels)
        except EOFError:
            return None, None
    return dataset, (found[0] + (stream.tell(),) if found else None)


def _deflated_header(fh: BinaryIO, path: Path, offset: int, size: int):
    inflater = _Inflater(fh, offset, path)
    bound = _FIRST_INFLATE
    while True:
        inflater.grow_to(bound)
        dataset, pixel = _parse_inflated(bytes(inflater.data), stop_at_pixels=True)
        if pixel is not None or inflater.finished:
            break
        if bound >= _MAX_HEADER_BYTES:
            raise _damaged(path, f"its deflated header is over {_MAX_HEADER_BYTES >> 20} MB")
        bound *= 4
    if dataset is None:
        raise _damaged(path, "its deflated data set cannot be parsed")
    element = None
    if pixel is not None:
        tag, vr, length, position = pixel
        if length == _UNDEFINED:
            raise _damaged(path, "its deflated data set holds compressed pixel data")
        header = 12 if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") else 8
        element = PixelElement(tag, position, position + header, length, position + header + length)
    return dataset, element


def read_header(fh: BinaryIO, path: Path) -> DicomFile:
    """Parse a DICOM file's header up to its pixel data, which is located but not read.

    Raises
    ------
    XrayReadError
        Not a DICOM file, a damaged header or file meta, a deflated data set that
        does not inflate, encapsulated pixel data without its delimiter.
    """
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    size = os.fstat(fh.fileno()).st_size
    meta = _file_meta(fh, path)
    syntax, offset = meta if meta is not None else (None, None)
    first = _first_group(fh, offset) if offset is not None else None
    try:
        if syntax == DEFLATED:
            dataset, pixel = _deflated_header(fh, path, offset, size)
            dataset.file_meta = pydicom.filereader.read_file_meta_info(path)
        else:
            fh.seek(0)
            dataset = pydicom.dcmread(fh, stop_before_pixels=True, defer_size=1 << 20)
            implicit, little = _encoding(dataset)
            pixel = _element_at(_reader(fh), fh.tell(), size, little, implicit, path)
    except XrayReadError:
        raise
    except InvalidDicomError as exc:
        raise XrayReadError(
            f"{path.name} is not a DICOM file (pydicom: {exc}); check that it is a "
            "DICOM image and not another file with a .dcm name",
            path,
        ) from exc
    except Exception as exc:  # pydicom raises many kinds on damaged headers
        raise XrayReadError(
            f"{path.name}: pydicom cannot read the DICOM header ({type(exc).__name__}: "
            f"{exc}); the file may be truncated or damaged",
            path,
        ) from exc
    return DicomFile(dataset, syntax, pixel, offset, first, size)


class _Prefix:
    """The first ``end`` bytes of an open file, as a read-only file object for pydicom."""

    def __init__(self, fh: BinaryIO, end: int):
        self._fh, self._end = fh, end
        self.name = getattr(fh, "name", None)
        fh.seek(0)

    def read(self, size: int = -1) -> bytes:
        left = max(0, self._end - self._fh.tell())
        return self._fh.read(left if size is None or size < 0 else min(size, left))

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 2:
            return self._fh.seek(self._end + offset)
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:  # the caller closes the real file
        pass


def read_dataset_with_pixels(fh: BinaryIO, path: Path, header: DicomFile):
    """The data set with its pixel data, read no further than the pixel data's end.

    For a deflated file the data set is inflated only up to that end, and its
    transfer syntax is then treated as Explicit VR Little Endian.

    Raises
    ------
    XrayReadError
        The file ends before its pixel data does, or pydicom cannot parse it.
    """
    pydicom = _pydicom()
    pixel = header.pixel
    try:
        if header.transfer_syntax == DEFLATED:
            inflater = _Inflater(fh, header.dataset_offset, path)
            inflater.grow_to(pixel.end)
            if len(inflater.data) < pixel.end:
                raise XrayReadError(
                    f"{path.name} is truncated: its deflated data set ends before its pixel "
                    "data does; re-download or re-export it",
                    path,
                )
            dataset, _ = _parse_inflated(bytes(inflater.data), stop_at_pixels=False)
            file_meta = pydicom.dataset.FileMetaDataset(header.dataset.file_meta)
            file_meta.TransferSyntaxUID = pydicom.uid.UID(_EXPLICIT_LITTLE)
            dataset.file_meta = file_meta
            return dataset
        if pixel.end > header.file_size:
            missing = pixel.end - header.file_size
            raise XrayReadError(
                f"{path.name} is truncated: its pixel data needs {missing} bytes more than "
                "the file holds; re-download or re-export it",
                path,
            )
        return pydicom.dcmread(_Prefix(fh, pixel.end))
    except XrayReadError:
        raise
    except Exception as exc:
        raise XrayReadError(
            f"{path.name}: pydicom cannot read the file ({type(exc).__name__}: {exc}); it "
            "may be truncated or damaged",
            path,
        ) from exc
