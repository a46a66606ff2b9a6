"""Read chest X-rays: PNG (ChestX-ray8), DICOM, folders and lists of files.

Public API
----------
* :func:`read_xray` – path(s) → ``numpy.ndarray`` (for scripts and notebooks).
* :func:`read_xray_with_metadata` – path(s) → ``(array, metadata)``.
* :func:`list_xray_files` – the image files of a folder, in natural order.
* :func:`napari_get_reader` / :func:`read_xray_layers` – the npe2 reader.
* :class:`XrayReadError` – raised for every file the reader claims but cannot read.

Rules
-----
* **Shape.** One file gives a 2-D ``(H, W)`` array (a multi-frame DICOM file gives
  ``(F, H, W)``). A folder or a list always gives a 3-D ``(N, H, W)`` stack, even
  when it holds one frame.
* **Order.** A list is kept in the order given. A folder is sorted naturally by
  file name (``img_2`` before ``img_10``); a folder of DICOM files is sorted by
  ``InstanceNumber`` within each series (series in the natural order of their
  first file; files without ``InstanceNumber`` last, by name).
* **Which files of a folder.** ``*.png``, ``*.dcm``, ``*.dicom`` (any case) and
  extension-less files that start like DICOM (``DICM`` at byte 128). Hidden files,
  subfolders, ``DICOMDIR`` and everything else (``Data_Entry_2017.csv``, notes …)
  are skipped. PNG and DICOM are never mixed in one stack.
* **Grayscale.** Colour PNGs (RGB, RGBA, LA, palette, 1-bit) are converted with
  Pillow's ``convert("L")``: ITU-R 601-2 luma, ``L = R·299/1000 + G·587/1000 +
  B·114/1000`` computed by Pillow in fixed point as ``(R·19595 + G·38470 +
  B·7471 + 32768) >> 16``; alpha is dropped. 16-bit colour PNGs (which Pillow
  would truncate to 8 bits) are decoded with OpenCV and reduced with the same
  fixed-point weights to ``uint16``. Every conversion is recorded in
  ``metadata["converted_to_grayscale"]``.
* **Bit depth.** 8-bit PNGs give ``uint8``; 16-bit grayscale PNGs (Pillow mode
  ``"I;16"``; ``"I"`` in old Pillow versions) give ``uint16`` with exact values.
* **DICOM.** Exactly the named file is read (pydicom; never imageio's DICOM plugin,
  which scans the whole folder). ``RescaleSlope``/``RescaleIntercept`` are applied.
  The output stays an integer type when slope and intercept are integers and the
  rescaled range of the ``BitsStored``-bit stored values fits one of uint8, int8,
  uint16, int16, uint32, int32 (the smallest that fits; CT with intercept −1024 and
  16 stored bits gives int32); otherwise it is float32. ``MONOCHROME1`` files are
  inverted so bone is bright: ``new = (lo + hi) − value`` where ``[lo, hi]`` is that
  rescaled *possible* range (not the observed one, so all frames of a stack are
  inverted alike and the values keep their range and dtype). The pixel spacing
  (``PixelSpacing``, else ``ImagerPixelSpacing``) is returned in the metadata and
  becomes the napari layer ``scale``.
* **Memory.** Headers are read first (sizes, dtypes, DICOM order), then one
  ``(N, H, W)`` array is allocated and every frame is decoded into its slice.
* **Errors.** A path the reader does not claim makes :func:`napari_get_reader`
  return ``None`` so other readers may try. For a claimed path every failure is an
  :class:`XrayReadError` (a ``ValueError``) naming the file and what to do.

This module imports neither napari nor Qt.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_xray.errors import XrayReadError

__all__ = [
    "DICOM_SUFFIXES",
    "PNG_SUFFIXES",
    "XrayReadError",
    "list_xray_files",
    "napari_get_reader",
    "natural_sort_key",
    "read_xray",
    "read_xray_layers",
    "read_xray_with_metadata",
]

PathLike = str | os.PathLike
PathOrPaths = PathLike | Sequence[PathLike]
LayerDataTuple = tuple  # (data, kwargs, layer_type)

#: File name extensions (lower case) read as PNG.
PNG_SUFFIXES = frozenset({".png"})
#: File name extensions (lower case) read as DICOM.
DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})

# Pillow's fixed-point ITU-R 601-2 luma weights (sum 65536), used by convert("L").
_LUMA_R, _LUMA_G, _LUMA_B = 19595, 38470, 7471
# How many extension-less files napari_get_reader peeks at when judging a folder.
_MAX_SNIFF_IN_GET_READER = 16
_DICOM_MAGIC_OFFSET = 128
_INTEGER_DTYPES = tuple(
    np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32)
)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def natural_sort_key(name: str) -> tuple:
    """Key for natural ordering: ``img_2`` sorts before ``img_10``.

    Returns
    -------
    tuple
        Alternating lower-cased text and integer parts, then the name itself as a
        tie-breaker. Never raises for a ``str``.
    """
    parts = re.split(r"(\d+)", name)
    return (
        tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)),
        name,
    )


def _looks_like_dicom(path: Path) -> bool:
    """``True`` when the file has the DICOM ``DICM`` marker at byte 128 (reads 132 bytes)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_DICOM_MAGIC_OFFSET + 4)
    except OSError:
        return False
    return head[_DICOM_MAGIC_OFFSET:] == b"DICM"


def _may_be_extensionless_dicom(path: Path) -> bool:
    """DICOM files from scanners often have no extension or a numeric one (``1.2.3.45``)."""
    suffix = path.suffix
    return (suffix == "" or suffix[1:].isdigit()) and path.name.upper() != "DICOMDIR"


def _file_kind(path: Path, sniff: bool = True) -> str | None:
    """``"png"``, ``"dicom"`` or ``None`` for an existing regular file."""
    suffix = path.suffix.lower()
    if suffix in PNG_SUFFIXES:
        return "png"
    if suffix in DICOM_SUFFIXES:
        return "dicom"
    if sniff and _may_be_extensionless_dicom(path) and _looks_like_dicom(path):
        return "dicom"
    return None


def _source_kind(path: Path) -> str | None:
    """The one place that decides what a path is.

    Returns ``"png"``, ``"dicom"``, ``"folder"``, ``"zarr"`` (a ``*.zarr`` directory;
    napari-xray's own batch stores go to :mod:`napari_xray.io.store`) or
    ``None`` (not ours / does not exist). Only cheap checks: ``stat`` and, for an
    extension-less file, its first 132 bytes.
    """
    if path.is_dir():
        return "zarr" if path.suffix.lower() == ".zarr" else "folder"
    if path.is_file():
        return _file_kind(path)
    return None


def _folder_entries(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            return [
                Path(entry.path)
                for entry in it
                if not entry.name.startswith(".") and entry.is_file()
            ]
    except OSError as exc:
        raise XrayReadError(f"cannot list folder {folder}: {exc}", folder) from exc


def list_xray_files(folder: PathLike) -> list[Path]:
    """The PNG and DICOM files directly inside ``folder``, in natural name order.

    Hidden files, subfolders, ``DICOMDIR`` and files with other extensions are
    skipped; extension-less files are included when they carry the DICOM ``DICM``
    marker. (DICOM files are re-ordered by ``InstanceNumber`` when read.)

    Returns
    -------
    list of pathlib.Path
        Possibly empty.

    Raises
    ------
    XrayReadError
        ``folder`` is not a folder or cannot be listed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise XrayReadError(f"{folder} is not a folder", folder)
    files = [p for p in _folder_entries(folder) if _file_kind(p) is not None]
    return sorted(files, key=lambda p: natural_sort_key(p.name))


def _folder_claimable(folder: Path) -> bool:
    """Cheap check for napari_get_reader: does the folder hold a file we read?"""
    try:
        entries = _folder_entries(folder)
    except XrayReadError:
        return False
    sniffed = 0
    for path in entries:
        if _file_kind(path, sniff=False) is not None:
            return True
    for path in entries:
        if _may_be_extensionless_dicom(path):
            if _looks_like_dicom(path):
                return True
            sniffed += 1
            if sniffed >= _MAX_SNIFF_IN_GET_READER:
                break
    return False


def _as_path_list(path_or_paths: PathOrPaths) -> tuple[list[Path], bool]:
    """Normalise the input; returns (paths, given_as_list)."""
    if isinstance(path_or_paths, (str, os.PathLike)):
        return [Path(path_or_paths)], False
    if isinstance(path_or_paths, Iterable):
        paths = list(path_or_paths)
        if not all(isinstance(p, (str, os.PathLike)) for p in paths):
            raise TypeError(
                "read_xray expects a path (str or pathlib.Path) or a list of paths, "
                f"got a list holding {sorted({type(p).__name__ for p in paths})}"
            )
        return [Path(p) for p in paths], True
    raise TypeError(
        "read_xray expects a path (str or pathlib.Path) or a list of paths, "
        f"got {type(path_or_paths).__name__}"
    )


# --------------------------------------------------------------------------------------
# napari entry points
# --------------------------------------------------------------------------------------


def napari_get_reader(path: PathLike | Sequence[PathLike]) -> Callable | None:
    """npe2 reader contribution: claim PNG/DICOM files, lists of them and folders.

    Only cheap checks are made here (existence, extension, a folder listing, and
    the first 132 bytes of extension-less files); nothing is decoded.

    Returns
    -------
    callable or None
        :func:`read_xray_layers` when every path is a ``.png``/``.dcm``/``.dicom``
        file (or an extension-less DICOM file) or a folder holding at least one
        such file; ``None`` otherwise (wrong extension, missing path, a folder
        without images, a ``.zarr`` store, an empty list) so other readers may try.
        Never raises: problems with a claimed path are reported by the reader.
    """
    try:
        paths, _ = _as_path_list(path)
    except TypeError:
        return None
    if not paths:
        return None
    if len(paths) == 1:
        from napari_xray.io import store  # napari-xray batch results: STORE.zarr or STORE.zarr/<filter>

        if store.is_xray_store(paths[0]):
            return store.open_store_layers
    for p in paths:
        kind = _source_kind(p)
        if kind == "zarr":
            return None  # a Zarr store that napari-xray did not write
        if kind is None or (kind == "folder" and not _folder_claimable(p)):
            return None
    return read_xray_layers


def read_xray_layers(path: PathLike | Sequence[PathLike]) -> list[LayerDataTuple]:
    """The napari reader: one image layer for a file, a folder or a list of files.

    Returns
    -------
    list of LayerDataTuple
        ``[(data, kwargs, "image")]`` where ``kwargs`` holds ``name`` (file stem,
        folder name, or the common prefix of a list), ``metadata`` (see
        :func:`read_xray_with_metadata`), ``colormap="gray"``, ``rgb=False`` and,
        when the DICOM pixel spacing is known, ``scale`` in mm (``1.0`` along the
        stack axis).

    Raises
    ------
    XrayReadError
        Any file cannot be read (napari shows the message and keeps running).
    """
    data, metadata = read_xray_with_metadata(path)
    kwargs: dict[str, Any] = {
        "name": metadata["name"],
        "metadata": metadata,
        "colormap": "gray",
        "rgb": False,
    }
    spacing = metadata.get("pixel_spacing")
    if spacing is not None:
        kwargs["scale"] = (1.0,) * (data.ndim - 2) + tuple(spacing)
    return [(data, kwargs, "image")]


# --------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------


def read_xray(path_or_paths: PathOrPaths) -> np.ndarray:
    """Read one X-ray, a folder of X-rays or a list of files into a NumPy array.

    Parameters
    ----------
    path_or_paths
        A ``.png``/``.dcm``/``.dicom`` file, a folder, or a list of files and/or
        folders (``str`` or ``pathlib.Path``). See the module docstring for the
        order, grayscale, dtype and DICOM rules.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` for one file (``(F, H, W)`` for a multi-frame DICOM file);
        ``(N, H, W)`` for a folder or a list. dtype uint8/uint16 for PNG, an integer
        type or float32 for DICOM.

    Raises
    ------
    XrayReadError
        A file is missing, unreadable, truncated, not an image, a decompression
        bomb, compressed with a codec that is not installed, of a different size
        than the first frame; or a folder holds no images.
    TypeError
        ``path_or_paths`` is not a path or a list of paths.
    """
    data, _ = read_xray_with_metadata(path_or_paths)
    return data


def read_xray_with_metadata(path_or_paths: PathOrPaths) -> tuple[np.ndarray, dict[str, Any]]:
    """Like :func:`read_xray`, and also return what was read and how.

    Returns
    -------
    (numpy.ndarray, dict)
        The array as :func:`read_xray` returns it, and a metadata dict with

        * ``"name"`` – a layer name: file stem, folder name, or the common prefix of
          a list's stems (cut at the last ``_``/``-``/``.``/space; the first stem if
          there is none);
        * ``"format"`` – ``"png"`` or ``"dicom"``;
        * ``"source_paths"`` – list of str, one per file, in stack order;
        * ``"file_names"`` – the matching file names;
        * ``"converted_to_grayscale"`` – list of ``{"file_name", "original_mode"}``
          for every colour file that was converted (empty if none);

        and for DICOM also

        * ``"modality"``, ``"photometric_interpretation"`` – the value shared by all
          files, else ``None``;
        * ``"rescale_applied"`` – ``True`` if any file had a non-identity
          slope/intercept;
        * ``"inverted_monochrome1"`` – file names that were inverted;
        * ``"pixel_spacing"`` – ``(row_mm, column_mm)`` shared by all files, else
          ``None``; ``"pixel_spacing_source"`` – ``"PixelSpacing"`` or
          ``"ImagerPixelSpacing"`` (spacing at the detector) or ``None``;
        * ``"dicom"`` – one dict per file: ``file_name``, ``modality``,
          ``photometric_interpretation``, ``rescale_slope``, ``rescale_intercept``,
          ``rescale_applied``, ``inverted``, ``bits_stored``, ``instance_number``,
          ``series_instance_uid``, ``series_number``, ``number_of_frames``,
          ``pixel_spacing``, ``pixel_spacing_source``, ``transfer_syntax``.

    Raises
    ------
    XrayReadError, TypeError
        As :func:`read_xray`.
    """
    inputs, given_as_list = _as_path_list(path_or_paths)
    if not inputs:
        raise XrayReadError("no paths given; pass a file, a folder or a list of files")

    groups: list[list[_Source]] = []
    for path in inputs:
        kind = _source_kind(path)
        if kind == "folder":
            files = list_xray_files(path)
            if not files:
                raise XrayReadError(
                    f"folder {path} holds no PNG or DICOM files (looked for *.png, *.dcm, "
                    "*.dicom and extension-less DICOM; hidden files and subfolders are "
                    "skipped); pick a folder with images or pass the files themselves",
                    path,
                )
            sources = [_probe(f, _file_kind(f)) for f in files]
            groups.append(_sort_folder(sources))
        elif kind == "zarr":
            raise XrayReadError(
                f"{path} is a Zarr store, not an image file; open napari-xray batch "
                "results with napari_xray.io.store.open_store_layers (or in napari)",
                path,
            )
        elif kind in ("png", "dicom"):
            groups.append([_probe(path, kind)])
        elif not path.exists():
            raise XrayReadError(f"{path} does not exist; check the path", path)
        else:
            raise XrayReadError(
                f"{path.name} is neither a PNG nor a DICOM file (expected *.png, *.dcm or "
                "*.dicom); convert it or open it with another reader",
                path,
            )
    sources = [s for group in groups for s in group]
    stacked = given_as_list or _source_kind(inputs[0]) == "folder"

    _check_compatible(sources, stacked)
    data = _allocate(sources, stacked)
    for i, src in enumerate(sources):
        target = data[i] if stacked else data
        if src.kind == "png":
            _decode_png(src, target)
        else:
            _decode_dicom(src, target)

    metadata = _metadata(sources, _layer_name(inputs, given_as_list))
    return data, metadata


# --------------------------------------------------------------------------------------
# Header pass
# --------------------------------------------------------------------------------------


@dataclass
class _Source:
    """What the header of one file says (nothing decoded yet)."""

    path: Path
    kind: str  # "png" | "dicom"
    shape: tuple[int, ...]  # (H, W), or (F, H, W) for a multi-frame DICOM
    dtype: np.dtype  # dtype of this file's decoded, converted output
    original_mode: str | None = None  # set when converted to grayscale
    convert: str | None = None  # "pillow" | "cv2-16bit" | "dicom-rgb"
    dicom: dict[str, Any] = field(default_factory=dict)  # per-file DICOM metadata
    # DICOM value transform: stored range, rescale, inversion
    stored_range: tuple[int, int] | None = None
    value_range: tuple[float, float] | None = None
    slope: float = 1.0
    intercept: float = 0.0

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.shape[-2:]


def _probe(path: Path, kind: str | None) -> _Source:
    if kind == "png":
        return _probe_png(path)
    if kind == "dicom":
        return _probe_dicom(path)
    raise XrayReadError(f"{path.name} is neither a PNG nor a DICOM file", path)


def _pil():
    from PIL import Image

    return Image


def _open_image(path: Path):
    """``PIL.Image.open`` with every failure turned into an XrayReadError."""
    Image = _pil()
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


def _probe_png(path: Path) -> _Source:
    with _open_image(path) as im:
        mode, (width, height), rawmode = im.mode, im.size, _png_rawmode(im)
    shape = (height, width)
    base_raw = rawmode.split(";")[0]
    if rawmode.endswith(("16B", "16")) and base_raw in ("RGB", "RGBA", "LA"):
        # Pillow would keep only the high byte of a 16-bit colour PNG.
        return _Source(
            path, "png", shape, np.dtype(np.uint16), f"{base_raw};16", convert="cv2-16bit"
        )
    if mode.startswith("I;16"):
        return _Source(path, "png", shape, np.dtype(np.uint16))
    if mode == "I":
        dtype = np.uint16 if rawmode.startswith("I;16") else np.int32
        return _Source(path, "png", shape, np.dtype(dtype))
    if mode == "L":
        return _Source(path, "png", shape, np.dtype(np.uint8))
    if mode == "F":
        return _Source(path, "png", shape, np.dtype(np.float32))
    # 1, P, PA, LA, La, RGB, RGBA, RGBa, RGBX, CMYK, YCbCr, ...: 8-bit grayscale via Pillow.
    return _Source(path, "png", shape, np.dtype(np.uint8), mode, convert="pillow")


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


def _spacing(ds) -> tuple[tuple[float, float] | None, str | None]:
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


def _codec_error(src_path: Path, ts, detail: str) -> XrayReadError:
    packages, command = _codec_packages(str(ts))
    return XrayReadError(
        f"{src_path.name} is compressed as '{ts.name}' ({ts}) and no installed decoder "
        f"can read it ({detail}). Install {packages} (e.g. '{command}'), or convert "
        "the file to an uncompressed transfer syntax",
        src_path,
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


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _probe_dicom(path: Path) -> _Source:
    pydicom = _pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
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
        return _Source(path, "dicom", shape, dtype, photometric, convert="dicom-rgb", dicom=info)
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
    return _Source(
        path,
        "dicom",
        shape,
        dtype,
        dicom=info,
        stored_range=stored,
        value_range=(lo, hi),
        slope=slope,
        intercept=intercept,
    )


def _sort_folder(sources: list[_Source]) -> list[_Source]:
    """Folder order: PNG by natural name (already); DICOM by series, InstanceNumber, name."""
    if not sources or any(s.kind != "dicom" for s in sources):
        return sources
    series_rank: dict[Any, int] = {}
    for s in sources:  # natural-name order of each series' first file
        series_rank.setdefault(s.dicom["series_instance_uid"], len(series_rank))

    def key(s: _Source):
        number = s.dicom["instance_number"]
        return (
            series_rank[s.dicom["series_instance_uid"]],
            number is None,
            number if number is not None else 0,
            natural_sort_key(s.name),
        )

    return sorted(sources, key=key)


def _check_compatible(sources: list[_Source], stacked: bool) -> None:
    kinds = {s.kind for s in sources}
    if len(kinds) > 1:
        png = next(s for s in sources if s.kind == "png")
        dcm = next(s for s in sources if s.kind == "dicom")
        raise XrayReadError(
            f"cannot stack PNG and DICOM files together ({png.name}, {dcm.name}, …); "
            "open the PNG files and the DICOM files separately"
        )
    if not stacked:
        return
    first = sources[0]
    for s in sources:
        if len(s.shape) != 2:
            raise XrayReadError(
                f"{s.name} holds {s.shape[0]} frames; a multi-frame DICOM file cannot be "
                "stacked with other files — open it on its own",
                s.path,
            )
    for s in sources[1:]:
        if s.frame_shape != first.frame_shape:
            h, w = s.frame_shape
            fh, fw = first.frame_shape
            raise XrayReadError(
                f"{s.name} is {h}×{w} (rows×columns) but the first frame {first.name} is "
                f"{fh}×{fw}; pass frames of one size or open them separately",
                s.path,
            )


def _common_dtype(dtypes: Iterable[np.dtype]) -> np.dtype:
    dtypes = list(dtypes)
    if any(d.kind == "f" for d in dtypes):
        return np.dtype(np.float32)
    return np.result_type(*dtypes)


def _allocate(sources: list[_Source], stacked: bool) -> np.ndarray:
    shape = (len(sources), *sources[0].frame_shape) if stacked else sources[0].shape
    dtype = _common_dtype(s.dtype for s in sources)
    try:
        return np.empty(shape, dtype=dtype)
    except (MemoryError, ValueError) as exc:
        nbytes = float(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        raise XrayReadError(
            f"not enough memory for {len(sources)} frame(s) of shape {shape[-2:]} "
            f"({nbytes / 1e9:.1f} GB as {dtype}); open fewer files at a time",
            sources[0].path if len(sources) == 1 else None,
        ) from exc


# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Pillow's fixed-point ITU-R 601-2 luma of ``(..., 3+)`` uint8/uint16 RGB; same dtype."""
    r = rgb[..., 0].astype(np.uint32)
    g = rgb[..., 1].astype(np.uint32)
    b = rgb[..., 2].astype(np.uint32)
    # max 65535 * 65536 + 32768 < 2**32: no overflow for 16-bit input
    luma = (r * _LUMA_R + g * _LUMA_G + b * _LUMA_B + 32768) >> 16
    return luma.astype(rgb.dtype)


def _decode_png(src: _Source, out: np.ndarray) -> None:
    if src.convert == "cv2-16bit":
        out[...] = _decode_png_16bit_colour(src)
        return
    try:
        with _open_image(src.path) as im:
            if src.convert == "pillow":
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
            f"{src.name} is {'truncated' if truncated else 'damaged'} and cannot be "
            f"decoded (Pillow: {exc}); re-download or re-export it, or remove it from "
            "the folder",
            src.path,
        ) from exc
    if frame.shape != out.shape:  # header and data disagree (should not happen)
        raise XrayReadError(
            f"{src.name} decoded to shape {frame.shape}, expected {out.shape}", src.path
        )
    out[...] = frame


def _decode_png_16bit_colour(src: _Source) -> np.ndarray:
    try:
        import cv2
    except ImportError as exc:
        raise XrayReadError(
            f"{src.name} is a 16-bit colour PNG; reading it without losing precision "
            "needs OpenCV ('pip install opencv-python-headless'), or convert it to "
            "16-bit grayscale first",
            src.path,
        ) from exc
    buffer = np.fromfile(src.path, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint16 or image.ndim != 3:
        raise XrayReadError(
            f"{src.name} is a 16-bit colour PNG that OpenCV cannot decode; it may be "
            "truncated or damaged — re-download or re-export it",
            src.path,
        )
    # OpenCV gives BGR(A); gray+alpha comes as BGRA with B = G = R.
    return _luma(image[..., 2::-1])


def _decode_dicom(src: _Source, out: np.ndarray) -> None:
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(src.path)
    except Exception as exc:
        raise XrayReadError(
            f"{src.name}: pydicom cannot read the file ({type(exc).__name__}: {exc}); it "
            "may be truncated or damaged",
            src.path,
        ) from exc
    ts = _transfer_syntax(ds)
    if "PixelData" not in ds:
        raise XrayReadError(f"{src.name} has no pixel data; it is not a DICOM image", src.path)
    try:
        stored = np.asarray(ds.pixel_array)
    except Exception as exc:
        if ts.is_compressed:
            raise _codec_error(src.path, ts, f"{type(exc).__name__}: {exc}") from exc
        raise XrayReadError(
            f"{src.name}: pydicom cannot decode the pixel data ({type(exc).__name__}: "
            f"{exc}); the file may be truncated or damaged",
            src.path,
        ) from exc

    if src.convert == "dicom-rgb":
        stored = _luma(stored)
    if stored.shape != out.shape:
        raise XrayReadError(
            f"{src.name}: the pixel data has shape {stored.shape} but the header says "
            f"{out.shape}; the file is damaged",
            src.path,
        )
    if stored.dtype.kind == "f":
        if out.dtype.kind != "f":
            raise XrayReadError(
                f"{src.name} holds floating-point pixel data, which this reader does not support",
                src.path,
            )
        out[...] = stored
        return
    if src.convert == "dicom-rgb":
        out[...] = stored
        return

    s_lo, s_hi = src.stored_range
    if stored.size and (stored.min() < s_lo or stored.max() > s_hi):
        # Bits above BitsStored are not pixel data (pydicom ≥ 3 already drops them).
        stored = stored & s_hi if s_lo == 0 else np.clip(stored, s_lo, s_hi)
    inverted = src.dicom["inverted"]
    if not src.dicom["rescale_applied"] and not inverted:
        out[...] = stored
        return
    lo, hi = src.value_range
    if out.dtype.kind == "f":
        values = stored.astype(np.float64)
        values *= src.slope
        values += src.intercept
        if inverted:
            np.subtract(lo + hi, values, out=values)
    else:
        values = stored.astype(np.int64)
        values *= int(src.slope)
        values += int(src.intercept)
        if inverted:
            np.subtract(int(lo) + int(hi), values, out=values)
    out[...] = values


# --------------------------------------------------------------------------------------
# Metadata and names
# --------------------------------------------------------------------------------------

_SEPARATORS = "_-. "


def _layer_name(inputs: list[Path], given_as_list: bool) -> str:
    if len(inputs) == 1:
        only = inputs[0]
        return only.name if only.is_dir() else only.stem
    stems = [p.name if p.is_dir() else p.stem for p in inputs]
    prefix = os.path.commonprefix(stems)
    if any(sep in prefix for sep in _SEPARATORS):
        cut = max(prefix.rfind(sep) for sep in _SEPARATORS)
        prefix = prefix[:cut]
    prefix = prefix.strip(_SEPARATORS)
    return prefix or stems[0]


def _shared(values: list[Any]) -> Any:
    return values[0] if values and all(v == values[0] for v in values) else None


def _metadata(sources: list[_Source], name: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "format": sources[0].kind,
        "source_paths": [os.fspath(s.path) for s in sources],
        "file_names": [s.name for s in sources],
        "converted_to_grayscale": [
            {"file_name": s.name, "original_mode": s.original_mode}
            for s in sources
            if s.original_mode is not None
        ],
    }
    if sources[0].kind != "dicom":
        return metadata
    per_file = [s.dicom for s in sources]
    spacing = _shared([d["pixel_spacing"] for d in per_file])
    metadata.update(
        {
            "modality": _shared([d["modality"] for d in per_file]),
            "photometric_interpretation": _shared(
                [d["photometric_interpretation"] for d in per_file]
            ),
            "rescale_applied": any(d["rescale_applied"] for d in per_file),
            "inverted_monochrome1": [d["file_name"] for d in per_file if d["inverted"]],
            "pixel_spacing": spacing,
            "pixel_spacing_source": (
                _shared([d["pixel_spacing_source"] for d in per_file]) if spacing else None
            ),
            "dicom": per_file,
        }
    )
    return metadata
