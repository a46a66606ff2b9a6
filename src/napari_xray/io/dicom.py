"""DICOM files: read the header with pydicom, then decode exactly that file.

``RescaleSlope``/``RescaleIntercept`` are applied; the output keeps the smallest
integer dtype that holds the rescaled range of the ``BitsStored``-bit values
(else float32), ``MONOCHROME1`` is inverted within that range, RGB is reduced to
luma, and the pixel spacing is read from ``PixelSpacing`` or
``ImagerPixelSpacing``. A compressed file whose codec is not installed gets an
error naming the package to install. pydicom is imported only when a file is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_xray.errors import XrayReadError
from napari_xray.io.png import rgb_to_luma

__all__ = ["DicomHeader", "decode_dicom", "probe_dicom"]

_INTEGER_DTYPES = tuple(
    np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32)
)


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


def _pydicom():
    try:
        import pydicom
    except ImportError as exc:  # pragma: no cover - pydicom is a dependency
        raise XrayReadError(
            "reading DICOM needs pydicom; install it with 'pip install pydicom'"
        ) from exc
    return pydicom


def _number(value: Any, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _spacing(ds) -> tuple[tuple[float, float] | None, str | None]:
    """``((row_mm, column_mm), keyword)`` from PixelSpacing, else ImagerPixelSpacing."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None and not isinstance(value, str):
            try:
                row, col = (float(v) for v in value)
            except (TypeError, ValueError):
                continue
            if row > 0 and col > 0:
                return (row, col), keyword
    return None, None


def _smallest_integer_dtype(lo: float, hi: float) -> np.dtype | None:
    for dtype in _INTEGER_DTYPES:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return dtype
    return None


# What gives pydicom a decoder, by transfer syntax UID prefix: (packages, pip command).
_LIBJPEG = (
    "pylibjpeg with pylibjpeg-libjpeg, or python-gdcm",
    "pip install pylibjpeg pylibjpeg-libjpeg",
)
_CODEC_PACKAGES = (
    ("1.2.840.10008.1.2.4.5", _LIBJPEG),  # JPEG baseline / extended / lossless (.57)
    ("1.2.840.10008.1.2.4.70", _LIBJPEG),  # JPEG lossless SV1
    (
        "1.2.840.10008.1.2.4.8",
        (  # JPEG-LS
            "pylibjpeg with pylibjpeg-libjpeg, pyjpegls, or python-gdcm",
            "pip install pylibjpeg pylibjpeg-libjpeg",
        ),
    ),
    (
        "1.2.840.10008.1.2.4.9",
        (  # JPEG 2000
            "pylibjpeg with pylibjpeg-openjpeg, or python-gdcm",
            "pip install pylibjpeg pylibjpeg-openjpeg",
        ),
    ),
    (
        "1.2.840.10008.1.2.4.20",
        (  # HTJ2K
            "pylibjpeg with pylibjpeg-openjpeg",
            "pip install pylibjpeg pylibjpeg-openjpeg",
        ),
    ),
    (
        "1.2.840.10008.1.2.5",
        (  # RLE
            "pylibjpeg with pylibjpeg-rle",
            "pip install pylibjpeg pylibjpeg-rle",
        ),
    ),
)


def _codec_packages(ts_uid: str) -> tuple[str, str]:
    for prefix, packages in _CODEC_PACKAGES:
        if ts_uid.startswith(prefix):
            return packages
    return "python-gdcm", "pip install python-gdcm"


def _codec_error(path: Path, ts, detail: str) -> XrayReadError:
    packages, command = _codec_packages(str(ts))
    return XrayReadError(
        f"{path.name} is compressed as '{ts.name}' ({ts}) and no installed decoder "
        f"can read it ({detail}). Install {packages} (e.g. '{command}'), or convert "
        "the file to an uncompressed transfer syntax",
        path,
    )


def _decoder_missing(ts) -> str | None:
    """pydicom ≥ 3: why no decoder is available for ``ts`` (``None`` if one is)."""
    try:
        from pydicom.pixels import get_decoder
    except ImportError:  # pydicom 2.x: find out when decoding
        return None
    try:
        decoder = get_decoder(ts)
    except (NotImplementedError, ValueError, KeyError) as exc:
        return str(exc)
    if decoder.is_available:
        return None
    missing = "; ".join(getattr(decoder, "missing_dependencies", []) or [])
    return f"pydicom's plugins are missing: {missing}" if missing else "no pydicom plugin"


def _transfer_syntax(ds):
    """The dataset's transfer syntax UID (implicit VR little endian when not stated)."""
    from pydicom.uid import UID, ImplicitVRLittleEndian

    file_meta = getattr(ds, "file_meta", None)
    ts = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    return UID(ts) if ts else ImplicitVRLittleEndian


def _read_header(path: Path):
    """``pydicom.dcmread`` without pixels, every failure an XrayReadError."""
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as exc:
        raise XrayReadError(
            f"{path.name} is not a DICOM file (pydicom: {exc}); check that it is a "
            "DICOM image and not another file with a .dcm name",
            path,
        ) from exc
    except FileNotFoundError as exc:
        raise XrayReadError(f"{path} does not exist; check the path", path) from exc
    except Exception as exc:  # pydicom raises many kinds on damaged headers
        raise XrayReadError(
            f"{path.name}: pydicom cannot read the DICOM header ({type(exc).__name__}: "
            f"{exc}); the file may be truncated or damaged",
            path,
        ) from exc


def probe_dicom(path: Path) -> DicomHeader:
    """Read the header of a DICOM file (no pixel data) and choose the output dtype.

    ``info`` holds ``file_name``, ``modality``, ``photometric_interpretation``,
    ``rescale_slope``, ``rescale_intercept``, ``rescale_applied``, ``inverted``,
    ``bits_stored``, ``instance_number``, ``series_instance_uid``,
    ``series_number``, ``number_of_frames``, ``pixel_spacing``,
    ``pixel_spacing_source`` and ``transfer_syntax``.

    Raises
    ------
    XrayReadError
        Not a DICOM file, a damaged header, no image (no Rows/Columns), a
        compressed transfer syntax without an installed decoder, PALETTE COLOR,
        or neither 1 nor 3 samples per pixel.
    """
    ds = _read_header(path)
    if "Rows" not in ds or "Columns" not in ds:
        raise XrayReadError(
            f"{path.name} is a DICOM file without an image (no Rows/Columns; e.g. a "
            "report or DICOMDIR); move it out of the folder or pass the image files as a list",
            path,
        )
    ts = _transfer_syntax(ds)
    if ts.is_compressed:
        missing = _decoder_missing(ts)
        if missing is not None:
            raise _codec_error(path, ts, missing)

    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(_number(ds.get("NumberOfFrames"), 1)) or 1
    samples = int(_number(ds.get("SamplesPerPixel"), 1))
    bits_allocated = int(_number(ds.get("BitsAllocated"), 16))
    bits_stored = int(_number(ds.get("BitsStored"), bits_allocated))
    signed = int(_number(ds.get("PixelRepresentation"), 0)) == 1
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    slope = _number(ds.get("RescaleSlope"), 1.0)
    intercept = _number(ds.get("RescaleIntercept"), 0.0)
    spacing, spacing_source = _spacing(ds)
    shape = (frames, rows, cols) if frames > 1 else (rows, cols)

    info: dict[str, Any] = {
        "file_name": path.name,
        "modality": str(ds.get("Modality", "")) or None,
        "photometric_interpretation": photometric,
        "rescale_slope": slope,
        "rescale_intercept": intercept,
        "rescale_applied": False,
        "inverted": False,
        "bits_stored": bits_stored,
        "instance_number": _int_or_none(ds.get("InstanceNumber")),
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")) or None,
        "series_number": _int_or_none(ds.get("SeriesNumber")),
        "number_of_frames": frames,
        "pixel_spacing": spacing,
        "pixel_spacing_source": spacing_source,
        "transfer_syntax": ts.name,
    }

    if photometric.startswith("PALETTE"):
        raise XrayReadError(
            f"{path.name} is a PALETTE COLOR DICOM image, which this reader does not "
            "support; export it as grayscale (MONOCHROME2)",
            path,
        )
    if samples == 3:  # RGB / YBR: pydicom gives RGB; reduce to luma, no rescale
        dtype = np.dtype(np.uint8 if bits_allocated <= 8 else np.uint16)
        return DicomHeader(shape, dtype, info, original_mode=photometric, rgb=True)
    if samples != 1:
        raise XrayReadError(
            f"{path.name} has {samples} samples per pixel; only grayscale (1) and RGB (3) "
            "DICOM images are supported",
            path,
        )

    if signed:
        stored = (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1)
    else:
        stored = (0, (1 << bits_stored) - 1)
    ends = (stored[0] * slope + intercept, stored[1] * slope + intercept)
    lo, hi = min(ends), max(ends)
    dtype = None
    if float(slope).is_integer() and float(intercept).is_integer():
        dtype = _smallest_integer_dtype(lo, hi)
        if dtype is not None:
            lo, hi = int(lo), int(hi)
    if dtype is None:
        dtype = np.dtype(np.float32)
    info["rescale_applied"] = slope != 1.0 or intercept != 0.0
    info["inverted"] = photometric == "MONOCHROME1"
    return DicomHeader(
        shape,
        dtype,
        info,
        stored_range=stored,
        value_range=(lo, hi),
        slope=slope,
        intercept=intercept,
    )


def _stored_values(path: Path) -> np.ndarray:
    """The stored pixel values of ``path`` as pydicom decodes them."""
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise XrayReadError(
            f"{path.name}: pydicom cannot read the file ({type(exc).__name__}: {exc}); it "
            "may be truncated or damaged",
            path,
        ) from exc
    ts = _transfer_syntax(ds)
    if "PixelData" not in ds:
        raise XrayReadError(f"{path.name} has no pixel data; it is not a DICOM image", path)
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:
        if ts.is_compressed:
            raise _codec_error(path, ts, f"{type(exc).__name__}: {exc}") from exc
        raise XrayReadError(
            f"{path.name}: pydicom cannot decode the pixel data ({type(exc).__name__}: "
            f"{exc}); the file may be truncated or damaged",
            path,
        ) from exc


def decode_dicom(path: Path, header: DicomHeader, out: np.ndarray) -> None:
    """Decode the DICOM ``path`` (probed as ``header``) into ``out``.

    Bits above ``BitsStored`` are dropped, then the rescale and the MONOCHROME1
    inversion (``new = lo + hi − value`` over the possible rescaled range) are
    applied in int64 or float64 and stored in ``out``'s dtype.

    Raises
    ------
    XrayReadError
        The file is damaged, holds no pixel data, needs a missing codec, or its
        pixel data disagrees with its header.
    """
    stored = _stored_values(path)
    if header.rgb:
        stored = rgb_to_luma(stored)
    if stored.shape != out.shape:
        raise XrayReadError(
            f"{path.name}: the pixel data has shape {stored.shape} but the header says "
            f"{out.shape}; the file is damaged",
            path,
        )
    if stored.dtype.kind == "f":
        if out.dtype.kind != "f":
            raise XrayReadError(
                f"{path.name} holds floating-point pixel data, which this reader does not support",
                path,
            )
        out[...] = stored
        return
    if header.rgb:
        out[...] = stored
        return

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
