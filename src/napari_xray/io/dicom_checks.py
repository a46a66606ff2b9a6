"""DICOM header fields, read and checked before any pixel data is touched.

Every field the decoder needs (Rows, Columns, Bits*, SamplesPerPixel,
PixelRepresentation, PhotometricInterpretation, the rescale) must be present
and sane; the transfer syntax must be one pydicom knows and match how the data
set is encoded; the pixel data must be as long as the header says. Each failure
is an :class:`~napari_xray.errors.XrayReadError` naming the file and the field.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from napari_xray.errors import XrayReadError
from napari_xray.io.dicom_codecs import transfer_syntax_error
from napari_xray.io.dicom_file import DEFLATED, DicomFile

__all__ = [
    "BIG_ENDIAN",
    "SIZE_FIELDS",
    "bad_field",
    "check_byte_order",
    "check_pixel_length",
    "expected_bytes",
    "field_value",
    "int_or_none",
    "optional_value",
    "read_finite",
    "read_number",
    "read_photometric",
    "read_spacing",
    "read_whole",
    "transfer_syntax",
]

BIG_ENDIAN = "1.2.840.10008.1.2.2"
_IMPLICIT_LITTLE = "1.2.840.10008.1.2"
SIZE_FIELDS = "Rows, Columns, NumberOfFrames, SamplesPerPixel, BitsAllocated"
# The photometric interpretations DICOM defines, and their samples per pixel.
_PHOTOMETRIC_SAMPLES = {
    "MONOCHROME1": 1,
    "MONOCHROME2": 1,
    "PALETTE COLOR": 1,
    "RGB": 3,
    "YBR_FULL": 3,
    "YBR_FULL_422": 3,
    "YBR_PARTIAL_422": 3,
    "YBR_PARTIAL_420": 3,
    "YBR_ICT": 3,
    "YBR_RCT": 3,
}


def bad_field(path: Path, keyword: str, what: str) -> XrayReadError:
    """The error for a header field that is missing, empty or impossible."""
    return XrayReadError(
        f"{path.name}: {keyword} {what}, so the image cannot be decoded; the header is "
        f"damaged — re-export the file, or correct {keyword} with a DICOM editor",
        path,
    )


def field_value(ds, keyword: str, path: Path) -> Any:
    """The value of ``keyword``; ``None`` if absent or empty."""
    try:
        value = ds.get(keyword)
    except Exception as exc:  # a value pydicom cannot convert
        raise bad_field(path, keyword, f"cannot be read ({exc})") from exc
    try:
        empty = value is None or len(value) == 0
    except TypeError:  # a number
        empty = False
    return None if empty else value


def read_number(ds, keyword: str, path: Path, default: float | None) -> float:
    """``keyword`` as a float; ``default`` when absent (``None``: required).

    Raises
    ------
    XrayReadError
        Required but missing or empty, or not a number.
    """
    value = field_value(ds, keyword, path)
    if value is None:
        if default is None:
            raise bad_field(path, keyword, "is missing or empty")
        return float(default)
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise bad_field(path, keyword, f"is {value!r}, not a number") from exc


def read_whole(ds, keyword, path, default, lo, hi, allowed=None) -> int:
    """``keyword`` as an int in ``[lo, hi]`` (and in ``allowed`` if given).

    Raises
    ------
    XrayReadError
        Missing (when required), not a whole number, or out of range.
    """
    number = read_number(ds, keyword, path, default)
    if not (math.isfinite(number) and number.is_integer() and lo <= number <= hi):
        raise bad_field(path, keyword, f"is {number:g}")
    number = int(number)
    if allowed is not None and number not in allowed:
        raise bad_field(path, keyword, f"is {number} (DICOM allows {', '.join(map(str, allowed))})")
    return number


def read_finite(ds, keyword: str, path: Path, default: float) -> float:
    """``keyword`` as a finite float (for RescaleSlope/RescaleIntercept).

    Raises
    ------
    XrayReadError
        Not a number, NaN or ±inf.
    """
    number = read_number(ds, keyword, path, default)
    if not math.isfinite(number):
        raise XrayReadError(
            f"{path.name}: {keyword} is {number}, so the pixel values cannot be rescaled; "
            f"the header is damaged — correct {keyword} with a DICOM editor (RescaleSlope 1 "
            "and RescaleIntercept 0 keep the stored values) or re-export the file",
            path,
        )
    return number


def read_photometric(ds, path: Path, samples: int) -> str:
    """PhotometricInterpretation, checked against DICOM's terms and SamplesPerPixel."""
    value = field_value(ds, "PhotometricInterpretation", path)
    if value is None:
        raise bad_field(path, "PhotometricInterpretation", "is missing or empty")
    photometric = str(value).strip().upper()
    if photometric not in _PHOTOMETRIC_SAMPLES:
        raise bad_field(path, "PhotometricInterpretation", f"is {photometric!r}")
    if _PHOTOMETRIC_SAMPLES[photometric] != samples:
        raise bad_field(
            path,
            "PhotometricInterpretation",
            f"is {photometric} but SamplesPerPixel is {samples}",
        )
    return photometric


def optional_value(ds, keyword: str) -> Any:
    """The value of a field only shown as metadata; ``None`` if absent or unreadable."""
    try:
        return ds.get(keyword)
    except Exception:  # e.g. a damaged VR pydicom cannot convert
        return None


def int_or_none(value: Any) -> int | None:
    """``int(value)``, or ``None`` when it is empty or not a number (never raises)."""
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def read_spacing(ds) -> tuple[tuple[float, float] | None, str | None]:
    """``((row_mm, column_mm), keyword)`` from PixelSpacing, else ImagerPixelSpacing."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            value = ds.get(keyword)
            row, col = (float(v) for v in value)
        except Exception:
            continue
        if row > 0 and col > 0 and math.isfinite(row) and math.isfinite(col):
            return (row, col), keyword
    return None, None


def transfer_syntax(path: Path, stated: str | None):
    """The transfer syntax as a pydicom UID (implicit VR little endian when not stated)."""
    from pydicom.uid import UID

    ts = UID(stated or _IMPLICIT_LITTLE)
    if not ts.is_transfer_syntax:
        raise transfer_syntax_error(path, str(ts))
    return ts


def check_byte_order(path: Path, header: DicomFile, ts, has_image: bool) -> None:
    """Refuse a data set whose first tag is encoded in the other byte order than stated.

    A data set starts with a small group (0008 nearly always): read in the
    wrong byte order it becomes 0x0800 or larger.
    """
    first = header.first_group
    if first is None:
        return
    as_little, as_big = first
    if str(ts) == BIG_ENDIAN and as_little < 0x100 <= as_big:
        raise XrayReadError(
            f"{path.name} is labelled Explicit VR Big Endian but its data set is encoded "
            "little endian (the file meta does not match the data); re-export the file, or "
            "set its TransferSyntaxUID to Explicit VR Little Endian (1.2.840.10008.1.2.1)",
            path,
        )
    if not has_image and ts.is_little_endian and as_big < 0x100 <= as_little:
        raise XrayReadError(
            f"{path.name} is labelled little endian but its data set looks big endian (the "
            "file meta does not match the data); re-export the file with a correct "
            "TransferSyntaxUID",
            path,
        )


def expected_bytes(ds, rows, cols, frames, samples, bits_allocated) -> int:
    """Bytes of native pixel data the header describes (pydicom's count when it can)."""
    try:
        from pydicom.pixels.utils import get_expected_length

        return int(get_expected_length(ds, "bytes"))
    except Exception:
        return math.ceil(rows * cols * frames * samples * bits_allocated / 8)


def check_pixel_length(path, header: DicomFile, ts, expected: int, frame_bytes: int) -> None:
    """Refuse pixel data past the end of the file, shorter than ``expected``, or a frame longer.

    Raises
    ------
    XrayReadError
        The file is truncated, or its pixel data and header disagree.
    """
    pixel = header.pixel
    if header.transfer_syntax != DEFLATED and pixel.end > header.file_size:
        raise XrayReadError(
            f"{path.name} is truncated: its pixel data needs {pixel.end - header.file_size} "
            "bytes more than the file holds; re-download or re-export it",
            path,
        )
    if ts.is_compressed or pixel.length is None:
        return
    if pixel.length < expected:
        raise XrayReadError(
            f"{path.name} is damaged: its pixel data holds {pixel.length} bytes, fewer than "
            f"the {expected} its {SIZE_FIELDS} need; re-download or re-export it",
            path,
        )
    if pixel.length - expected >= max(frame_bytes, 2):
        raise XrayReadError(
            f"{path.name} is damaged: its pixel data holds {pixel.length} bytes, at least one "
            f"frame more than the {expected} its {SIZE_FIELDS} describe (one of them is "
            "probably wrong); re-export the file",
            path,
        )
