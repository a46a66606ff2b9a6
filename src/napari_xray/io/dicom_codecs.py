"""Which transfer syntaxes pydicom can decode here, and what to install for the others."""

from __future__ import annotations

from pathlib import Path

from napari_xray.errors import XrayReadError

__all__ = ["codec_error", "decoder_missing", "transfer_syntax_error", "undecodable_error"]

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


def codec_error(path: Path, ts, detail: str) -> XrayReadError:
    """The error for a compressed file no installed decoder reads: what to install."""
    packages, command = _codec_packages(str(ts))
    return XrayReadError(
        f"{path.name} is compressed as '{ts.name}' ({ts}) and no installed decoder "
        f"can read it ({detail}). Install {packages} (e.g. '{command}'), or convert "
        "the file to an uncompressed transfer syntax",
        path,
    )


def undecodable_error(path: Path, ts, detail: str) -> XrayReadError:
    """The error for compressed pixel data the installed decoders failed on."""
    packages, command = _codec_packages(str(ts))
    return XrayReadError(
        f"{path.name}: its '{ts.name}' ({ts}) pixel data cannot be decoded ({detail}). "
        f"The file may be damaged — re-download or re-export it; or the installed "
        f"decoders cannot handle it — install {packages} (e.g. '{command}'), or convert "
        "the file to an uncompressed transfer syntax",
        path,
    )


def transfer_syntax_error(path: Path, uid: str) -> XrayReadError:
    """The error for a transfer syntax UID that is not one pydicom knows."""
    return XrayReadError(
        f"{path.name} states the transfer syntax {uid!r}, which is not a DICOM transfer "
        "syntax (the file meta is damaged, or the file uses a private encoding); convert "
        "it to Explicit VR Little Endian, e.g. with DCMTK's 'dcmconv +te' or 'gdcmconv "
        "--raw'",
        path,
    )


def decoder_missing(ts) -> str | None:
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
