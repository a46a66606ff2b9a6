"""DICOM files: check the header, then decode exactly that file with pydicom.

The header is checked before any pixel data is read (:mod:`napari_xray.io.dicom_file`
reads it with bounds, deflated data sets included): Rows, Columns, BitsAllocated,
BitsStored, SamplesPerPixel, NumberOfFrames and PixelRepresentation must be sane,
RescaleSlope/RescaleIntercept finite, the transfer syntax one pydicom knows and
consistent with how the data set is encoded, the size within the limits
(:mod:`napari_xray.io.limits`) and the pixel data as long as the header says.

``RescaleSlope``/``RescaleIntercept`` are applied; the output keeps the smallest
integer dtype that holds the rescaled range of the ``BitsStored``-bit values
(uint8 … int32, then int64), else float32 (float64 when more than 24 bits are
stored), ``MONOCHROME1`` is inverted within that range, RGB is reduced to luma
(uint8/uint16/uint32 as allocated), and the pixel spacing is read from
``PixelSpacing`` or ``ImagerPixelSpacing``. A compressed file whose codec is not
installed gets an error naming the package to install.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_xray.errors import XrayReadError
from napari_xray.io.dicom_checks import (
    BIG_ENDIAN,
    SIZE_FIELDS,
    check_byte_order,
    check_pixel_length,
    expected_bytes,
    int_or_none,
    optional_value,
    read_finite,
    read_photometric,
    read_spacing,
    read_whole,
    transfer_syntax,
)
from napari_xray.io.dicom_codecs import codec_error, decoder_missing, undecodable_error
from napari_xray.io.dicom_display import display_windows, identifying_attributes
from napari_xray.io.dicom_file import DicomFile, read_dataset_with_pixels, read_header
from napari_xray.io.limits import ReadLimits
from napari_xray.io.paths import open_for_reading
from napari_xray.io.png import rgb_to_luma

__all__ = ["DicomHeader", "decode_dicom", "probe_dicom"]

_INTEGER_DTYPES = tuple(
    np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64)
)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class DicomHeader:
    """What a DICOM header says: the decoded image and the value transform to apply."""

    shape: tuple[int, ...]  # (H, W), or (F, H, W) for a multi-frame file
    dtype: np.dtype  # of the decoded, rescaled output
    info: dict[str, Any] = field(default_factory=dict)  # per-file metadata (see probe_dicom)
    original_mode: str | None = None  # photometric interpretation, when RGB is reduced
    rgb: bool = False  # three samples per pixel: reduce to luma, no rescale
    stored_range: tuple[int, int] | None = None  # possible stored values
    value_range: tuple[float, float] | None = None  # possible rescaled values
    slope: float = 1.0
    intercept: float = 0.0
    file: DicomFile | None = None  # where the pixel data is
    bits: tuple[int, int] = (16, 16)  # (BitsAllocated, BitsStored)
    # Groups a folder's files by series; a UID is identifying, so never in ``info``.
    series_uid: str | None = None


# --------------------------------------------------------------------------------------
# header fields
# --------------------------------------------------------------------------------------


def _smallest_integer_dtype(lo: float, hi: float) -> np.dtype | None:
    for dtype in _INTEGER_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return dtype
    return None


# --------------------------------------------------------------------------------------
# probe
# --------------------------------------------------------------------------------------


def probe_dicom(path: Path, limits: ReadLimits | None = None) -> DicomHeader:
    """Read and check the header of a DICOM file (no pixel data) and choose the output dtype.

    ``info`` holds ``file_name``, ``modality``, ``photometric_interpretation``,
    ``rescale_slope``, ``rescale_intercept``, ``rescale_applied``, ``inverted``,
    ``bits_stored``, ``instance_number``, ``series_number``, ``number_of_frames``,
    ``pixel_spacing``, ``pixel_spacing_source``, ``transfer_syntax``, ``windows``
    (:func:`napari_xray.io.dicom_display.display_windows`, on the values the reader
    returns), ``identifying_attributes`` (the names, never the values, of the
    patient-identifying attributes the header held) and ``identity_removed``
    (PatientIdentityRemoved is YES: those hold made-up values).

    Raises
    ------
    XrayReadError
        Not a DICOM file, a damaged header, no image (no Rows/Columns), an empty
        or impossible Rows/Columns/BitsAllocated/BitsStored/…, a non-finite
        rescale, an unknown transfer syntax or one that does not match the
        encoding, a compressed transfer syntax without an installed decoder,
        PALETTE COLOR, neither 1 nor 3 samples per pixel, pixel data shorter (or
        a frame longer) than the header says, or a size over ``limits``.
    """
    with open_for_reading(path) as fh:
        header = read_header(fh, path)
    ds = header.dataset
    ts = transfer_syntax(path, header.transfer_syntax)
    has_image = "Rows" in ds and "Columns" in ds
    check_byte_order(path, header, ts, has_image)
    if not has_image:
        raise XrayReadError(
            f"{path.name} is a DICOM file without an image (no Rows/Columns; e.g. a "
            "report or DICOMDIR); move it out of the folder or pass the image files as a "
            "list. If it should be an image, it is damaged or truncated: re-download it",
            path,
        )
    rows = read_whole(ds, "Rows", path, None, 1, 65535)
    cols = read_whole(ds, "Columns", path, None, 1, 65535)
    frames = read_whole(ds, "NumberOfFrames", path, 1, 0, 2**31 - 1) or 1
    samples = read_whole(ds, "SamplesPerPixel", path, None, 1, 65535)
    bits_allocated = read_whole(ds, "BitsAllocated", path, None, 1, 64, allowed=(1, 8, 16, 32, 64))
    bits_stored = read_whole(ds, "BitsStored", path, None, 1, bits_allocated)
    signed = read_whole(ds, "PixelRepresentation", path, None, 0, 1) == 1
    photometric = read_photometric(ds, path, samples)
    if samples == 3:
        read_whole(ds, "PlanarConfiguration", path, None, 0, 1)
    slope = read_finite(ds, "RescaleSlope", path, 1.0)
    intercept = read_finite(ds, "RescaleIntercept", path, 0.0)
    if header.pixel is None:
        raise XrayReadError(
            f"{path.name} has no pixel data; it is not a DICOM image (or it is truncated)",
            path,
        )
    if header.pixel.tag != 0x7FE00010:
        raise XrayReadError(
            f"{path.name} holds floating-point pixel data, which this reader does not "
            "support; export it as integer pixel data",
            path,
        )
    if photometric.startswith("PALETTE"):
        raise XrayReadError(
            f"{path.name} is a PALETTE COLOR DICOM image, which this reader does not "
            "support; export it as grayscale (MONOCHROME2)",
            path,
        )
    if samples not in (1, 3):
        raise XrayReadError(
            f"{path.name} has {samples} samples per pixel; only grayscale (1) and RGB (3) "
            "DICOM images are supported",
            path,
        )
    if limits is not None:
        limits.check(
            path,
            width=cols,
            height=rows,
            frames=frames,
            bytes_per_pixel=samples * max(1, bits_allocated // 8),
            source=SIZE_FIELDS,
        )
    if ts.is_compressed:
        missing = decoder_missing(ts)
        if missing is not None:
            raise codec_error(path, ts, missing)
    expected = expected_bytes(ds, rows, cols, frames, samples, bits_allocated)
    check_pixel_length(path, header, ts, expected, expected // frames)

    spacing, spacing_source = read_spacing(ds)
    shape = (frames, rows, cols) if frames > 1 else (rows, cols)
    info: dict[str, Any] = {
        "file_name": path.name,
        "modality": str(optional_value(ds, "Modality") or "") or None,
        "photometric_interpretation": photometric,
        "rescale_slope": slope,
        "rescale_intercept": intercept,
        "rescale_applied": False,
        "inverted": False,
        "bits_stored": bits_stored,
        "instance_number": int_or_none(optional_value(ds, "InstanceNumber")),
        "series_number": int_or_none(optional_value(ds, "SeriesNumber")),
        "number_of_frames": frames,
        "pixel_spacing": spacing,
        "pixel_spacing_source": spacing_source,
        "transfer_syntax": ts.name,
        "windows": [],
        "identifying_attributes": identifying_attributes(ds),
        "identity_removed": str(optional_value(ds, "PatientIdentityRemoved") or "").upper()
        == "YES",
    }
    common = {
        "file": header,
        "bits": (bits_allocated, bits_stored),
        "series_uid": str(optional_value(ds, "SeriesInstanceUID") or "") or None,
    }
    if samples == 3 and signed:
        raise XrayReadError(
            f"{path.name} is a signed (PixelRepresentation 1) colour image, which this reader "
            "does not support; export it as unsigned RGB or as grayscale",
            path,
        )
    if samples == 3:  # RGB / YBR: pydicom gives RGB; reduce to luma, no rescale
        dtype = np.dtype(
            np.uint8 if bits_allocated <= 8 else np.uint16 if bits_allocated <= 16 else np.uint32
        )
        return DicomHeader(shape, dtype, info, original_mode=photometric, rgb=True, **common)

    if signed:
        stored = (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1)
    else:
        stored = (0, (1 << bits_stored) - 1)
    ends = (stored[0] * slope + intercept, stored[1] * slope + intercept)
    lo, hi = min(ends), max(ends)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise XrayReadError(
            f"{path.name}: RescaleSlope {slope:g} and RescaleIntercept {intercept:g} take "
            f"the {bits_stored}-bit stored values beyond any floating-point range; the "
            "header is damaged — correct them with a DICOM editor or re-export the file",
            path,
        )
    dtype = None
    products_fit = abs(slope) * max(abs(stored[0]), abs(stored[1])) < 2**62
    if float(slope).is_integer() and float(intercept).is_integer() and products_fit:
        dtype = _smallest_integer_dtype(lo, hi)
        if dtype is not None:
            lo, hi = int(lo), int(hi)
    if dtype is None:
        wide = bits_stored > 24 or max(abs(lo), abs(hi)) > _FLOAT32_MAX
        dtype = np.dtype(np.float64 if wide else np.float32)
    info["rescale_applied"] = slope != 1.0 or intercept != 0.0
    info["inverted"] = photometric == "MONOCHROME1"
    info["windows"] = display_windows(ds, lo + hi if info["inverted"] else None)
    return DicomHeader(
        shape,
        dtype,
        info,
        stored_range=stored,
        value_range=(lo, hi),
        slope=slope,
        intercept=intercept,
        **common,
    )


# --------------------------------------------------------------------------------------
# decode
# --------------------------------------------------------------------------------------


def _stored_values(path: Path, header: DicomHeader) -> np.ndarray:
    """The stored pixel values of ``path`` as pydicom decodes them (read with bounds)."""
    with open_for_reading(path) as fh:
        ds = read_dataset_with_pixels(fh, path, header.file)
    probed = header.file.dataset
    for keyword in ("Rows", "Columns", "BitsAllocated", "NumberOfFrames", "SamplesPerPixel"):
        if optional_value(ds, keyword) != optional_value(probed, keyword):
            raise XrayReadError(f"{path.name} changed while it was being read; read it again", path)
    ts = transfer_syntax(path, header.file.transfer_syntax)
    try:
        stored = np.asarray(ds.pixel_array)
    except Exception as exc:
        if ts.is_compressed:
            raise undecodable_error(path, ts, f"{type(exc).__name__}: {exc}") from exc
        raise XrayReadError(
            f"{path.name}: pydicom cannot decode the pixel data ({type(exc).__name__}: "
            f"{exc}); the file may be truncated or damaged",
            path,
        ) from exc
    if str(ts) == BIG_ENDIAN and not header.rgb and _stored_little_endian(ds, header):
        raise XrayReadError(
            f"{path.name} is labelled Explicit VR Big Endian but its pixel data is stored "
            "little endian (its values only make sense byte-swapped): the file was written "
            "wrongly; re-export it, e.g. as Explicit VR Little Endian",
            path,
        )
    return stored


def _roughness(values: np.ndarray) -> float:
    return float(np.abs(np.diff(values.astype(np.float64), axis=-1)).mean())


def _stored_little_endian(ds, header: DicomHeader) -> bool:
    """Do the raw pixel bytes of a big-endian file read far smoother as little endian?

    Neighbouring pixels of a real image differ little; read in the wrong byte
    order, the low byte becomes the high byte and neighbours jump wildly.
    Compared on up to 64 rows of the first frame, each masked to BitsStored.
    """
    bits_allocated, bits_stored = header.bits
    if bits_allocated not in (16, 32):
        return False
    rows, cols = header.shape[-2:]
    raw = bytes(ds.PixelData[: rows * cols * bits_allocated // 8])
    if len(raw) < rows * cols * bits_allocated // 8 or cols < 2:
        return False
    width = bits_allocated // 8
    step = max(1, rows // 64)
    mask = (1 << bits_stored) - 1
    big = np.frombuffer(raw, f">u{width}").reshape(rows, cols)[::step] & mask
    little = np.frombuffer(raw, f"<u{width}").reshape(rows, cols)[::step] & mask
    return 4 * _roughness(little) < _roughness(big)


def decode_dicom(path: Path, header: DicomHeader, out: np.ndarray) -> None:
    """Decode the DICOM ``path`` (probed as ``header``) into ``out``.

    Bits above ``BitsStored`` are dropped, then the rescale and the MONOCHROME1
    inversion (``new = lo + hi − value`` over the possible rescaled range) are
    applied frame by frame in int64 or float64 and stored in ``out``'s dtype.

    Raises
    ------
    XrayReadError
        The file is damaged, holds no pixel data, needs a missing codec, its
        pixel data disagrees with its header, or it changed since it was probed.
    """
    stored = _stored_values(path, header)
    if header.rgb:
        if stored.shape[:-1] != out.shape or stored.shape[-1] != 3:
            raise XrayReadError(
                f"{path.name}: the pixel data has shape {stored.shape} but the header says "
                f"{out.shape} RGB; the file is damaged",
                path,
            )
        for index in np.ndindex(out.shape[:-2]):
            out[index] = rgb_to_luma(stored[index])
        return
    if stored.shape != out.shape:
        raise XrayReadError(
            f"{path.name}: the pixel data has shape {stored.shape} but the header says "
            f"{out.shape}; the file is damaged",
            path,
        )
    if stored.dtype.kind not in "iub":
        raise XrayReadError(
            f"{path.name} holds {stored.dtype} pixel data, which this reader does not support",
            path,
        )
    for index in np.ndindex(out.shape[:-2]):
        _transform(stored[index], out[index], header)


def _transform(stored: np.ndarray, out: np.ndarray, header: DicomHeader) -> None:
    """Stored values of one frame → masked, rescaled, inverted values in ``out``."""
    s_lo, s_hi = header.stored_range
    if stored.size and (stored.min() < s_lo or stored.max() > s_hi):
        # Bits above BitsStored are not pixel data (pydicom ≥ 3 already drops them).
        stored = stored & s_hi if s_lo == 0 else np.clip(stored, s_lo, s_hi)
    inverted = header.info["inverted"]
    if not header.info["rescale_applied"] and not inverted:
        out[...] = stored
        return
    lo, hi = header.value_range
    if out.dtype.kind == "f":
        values = stored.astype(np.float64)
        values *= header.slope
        values += header.intercept
        if inverted:
            np.subtract(lo + hi, values, out=values)
    else:
        values = stored.astype(np.int64)
        values *= int(header.slope)
        values += int(header.intercept)
        if inverted:
            np.subtract(int(lo) + int(hi), values, out=values)
    out[...] = values
