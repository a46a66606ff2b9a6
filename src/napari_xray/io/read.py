"""Read chest X-rays: a PNG or DICOM file, a folder of them, or a list of files.

:func:`read_xray` returns a NumPy array, :func:`read_xray_with_metadata` also what
was read and how. The rules:

* **Shape.** One file gives a 2-D ``(H, W)`` array (a multi-frame DICOM file gives
  ``(F, H, W)``). A folder or a list always gives a 3-D ``(N, H, W)`` stack, even
  when it holds one frame.
* **Order.** A list is kept in the order given. A folder is sorted naturally by
  file name (``img_2`` before ``img_10``); a folder of DICOM files is sorted by
  ``InstanceNumber`` within each series (series in the natural order of their
  first file; files without ``InstanceNumber`` last, by name).
* **Which files of a folder.** ``*.png``, ``*.dcm``, ``*.dicom`` (any case) and
  extension-less files that start like DICOM (``DICM`` at byte 128). Hidden files,
  ``DICOMDIR`` and everything else (``Data_Entry_2017.csv``, notes …) are skipped;
  a folder that holds no image files itself is read from its sub-folders, folder by
  folder (a DICOMDIR tree of patient/study/series folders; :mod:`napari_xray.io.paths`).
  PNG and DICOM are never mixed in one stack.
* **Bad files.** By default any file that cannot be read is an error. With
  ``skip_bad=True`` the unreadable files of a folder or list are left out of the
  stack and listed in ``metadata["skipped"]`` (a single file still raises).
* **Grayscale.** Colour PNGs (RGB, RGBA, LA, palette, 1-bit) are reduced to what
  Pillow's ``convert("L")`` gives: ITU-R 601-2 luma, ``L = R·299/1000 + G·587/1000 +
  B·114/1000`` computed in fixed point as ``(R·19595 + G·38470 + B·7471 + 32768)
  >> 16``; alpha is dropped. 16-bit colour PNGs are reduced with the same weights
  to ``uint16``. Every conversion is recorded in ``metadata["converted_to_grayscale"]``.
* **Bit depth.** 8-bit PNGs give ``uint8``; 16-bit grayscale PNGs give ``uint16``
  with exact values.
* **Checked decoding.** PNGs are decoded with libpng (through OpenCV) after their
  chunk structure and CRCs were checked: image data that is damaged or ends early
  is an error, never zeros or changed pixels (:mod:`napari_xray.io.png`).
* **DICOM.** Exactly the named file is read with pydicom, no further than the end
  of its pixel data. ``RescaleSlope``/``RescaleIntercept`` are applied. The output
  stays an integer type when slope and intercept are integers and the rescaled
  range of the ``BitsStored``-bit stored values fits one of uint8, int8, uint16,
  int16, uint32, int32, int64 (the smallest that fits; CT with intercept −1024 and
  16 stored bits gives int32); otherwise it is float32 (float64 for more than 24
  stored bits). ``MONOCHROME1`` files are inverted so bone is bright:
  ``new = (lo + hi) − value`` where ``[lo, hi]`` is that rescaled *possible* range,
  so all frames of a stack are inverted alike and keep their range and dtype. The
  pixel spacing (``PixelSpacing``, else ``ImagerPixelSpacing``) is returned in the
  metadata. A header that is damaged, inconsistent with the pixel data or with the
  transfer syntax is an error (:mod:`napari_xray.io.dicom`).
* **Size limits.** Each header is checked against ``max_pixels`` per frame and
  ``max_bytes`` per file before anything is decompressed (:mod:`napari_xray.io.limits`;
  the environment variables ``NAPARI_XRAY_MAX_PIXELS`` and ``NAPARI_XRAY_MAX_BYTES``
  set them for every read, napari's included).
* **Memory.** Headers are read first (sizes, dtypes, DICOM order), then one
  ``(N, H, W)`` array is allocated and every frame is decoded into its slice.
* **Errors.** Every failure is an :class:`~napari_xray.errors.XrayReadError` (a
  ``ValueError``) naming the file and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_xray.errors import XrayReadError
from napari_xray.io.dicom import DicomHeader, decode_dicom, probe_dicom
from napari_xray.io.limits import ReadLimits, read_limits
from napari_xray.io.paths import (
    PathOrPaths,
    as_path_list,
    file_kind,
    list_xray_files,
    natural_sort_key,
    path_kind,
)
from napari_xray.io.png import PngHeader, decode_png, probe_png

__all__ = ["read_xray", "read_xray_with_metadata"]


def read_xray(
    path_or_paths: PathOrPaths,
    *,
    max_pixels: int | None = None,
    max_bytes: int | None = None,
    skip_bad: bool = False,
) -> np.ndarray:
    """Read one X-ray, a folder of X-rays or a list of files into a NumPy array.

    Parameters
    ----------
    path_or_paths
        A ``.png``/``.dcm``/``.dicom`` file, a folder, or a list of files and/or
        folders (``str`` or ``pathlib.Path``). See the module docstring for the
        order, grayscale, dtype and DICOM rules.
    max_pixels
        The most pixels (width × height) one frame may have, checked from the
        header before anything is decompressed. Default: the environment variable
        ``NAPARI_XRAY_MAX_PIXELS``, else 50 000 000.
    max_bytes
        The most bytes one file may decode to (all frames and samples). Default:
        ``NAPARI_XRAY_MAX_BYTES``, else 2 000 000 000.
    skip_bad
        Leave the files of a folder or list that cannot be read out of the stack
        instead of raising (:func:`read_xray_with_metadata` lists them); raises
        when none can be read.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` for one file (``(F, H, W)`` for a multi-frame DICOM file);
        ``(N, H, W)`` for a folder or a list. dtype uint8/uint16 for PNG, an integer
        type, float32 or float64 for DICOM.

    Raises
    ------
    XrayReadError
        A file is missing, unreadable, truncated, damaged (a CRC mismatch, image
        data that ends early, an impossible or inconsistent header), larger than
        ``max_pixels``/``max_bytes``, compressed with a codec that is not
        installed, of a different size than the first frame; or a folder holds no
        images. The message names the file and what to do.
    TypeError
        ``path_or_paths`` is not a path or a list of paths.
    """
    data, _ = read_xray_with_metadata(
        path_or_paths, max_pixels=max_pixels, max_bytes=max_bytes, skip_bad=skip_bad
    )
    return data


def read_xray_with_metadata(
    path_or_paths: PathOrPaths,
    *,
    max_pixels: int | None = None,
    max_bytes: int | None = None,
    skip_bad: bool = False,
    metadata: str | os.PathLike | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Like :func:`read_xray` (same parameters), and also return what was read and how.

    ``metadata`` names a ChestX-ray8 entry file (``Data_Entry_2017.csv``) for the
    PNGs read; without it, one is looked for beside them and in
    ``$NAPARI_XRAY_CHESTXRAY8_DIR`` (:func:`napari_xray.io.chestxray8.find_entry_file`).

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
        * ``"windows"`` – the first file's display windows, default first, each
          ``{"name", "center", "width", "function", "limits"}`` with ``limits`` on
          the returned values (:func:`napari_xray.io.dicom_display.display_windows`);
        * ``"identifying_attributes"`` – the names of the patient-identifying
          attributes any file held; their values are never copied anywhere;
          ``"identity_removed"`` – every file says PatientIdentityRemoved YES
          (see :func:`napari_xray.deidentify`);
        * ``"dicom"`` – one dict per file: ``file_name``, ``modality``,
          ``photometric_interpretation``, ``rescale_slope``, ``rescale_intercept``,
          ``rescale_applied``, ``inverted``, ``bits_stored``, ``instance_number``,
          ``series_number``, ``number_of_frames``, ``windows``, ``identifying_attributes``,
          ``pixel_spacing``, ``pixel_spacing_source``, ``transfer_syntax``;

        and with ``skip_bad`` also ``"skipped"`` – ``{"file_name", "path", "reason"}``
        for every file left out (empty if none);

        and for PNGs that an entry file describes, ``"frames"`` (each frame's row:
        findings, follow-up, patient, age, sex, view, original size and spacing,
        ``pixel_size_mm``), ``"pixel_spacing"`` when all frames share one pixel size,
        ``"pixel_spacing_source"`` and ``"chestxray8"`` (see
        :func:`napari_xray.io.chestxray8.frames_entries`). An entry file found
        beside the images that cannot be read is named in
        ``metadata["chestxray8"]["error"]``; one passed as ``metadata`` raises.

    Raises
    ------
    XrayReadError, TypeError
        As :func:`read_xray`.
    """
    entry_file = metadata  # the name is the API's; below, metadata is what this returns
    inputs, given_as_list = as_path_list(path_or_paths)
    limits = read_limits(max_pixels, max_bytes)
    if not inputs:
        raise XrayReadError("no paths given; pass a file, a folder or a list of files")

    groups: list[list[_Source]] = []
    skipped: list[dict[str, str]] = []
    for path in inputs:
        kind = path_kind(path)
        if kind == "folder":
            files = list_xray_files(path)
            if not files:
                raise XrayReadError(
                    f"folder {path} holds no PNG or DICOM files (looked for *.png, *.dcm, "
                    "*.dicom and extension-less DICOM, in sub-folders too; hidden files "
                    "are skipped); pick a folder with images or pass the files themselves",
                    path,
                )
            sources = _probe_all(files, limits, skipped if skip_bad else None)
            groups.append(_sort_folder(sources))
        elif kind == "zarr":
            raise XrayReadError(
                f"{path} is a Zarr store, not an image file; open napari-xray batch "
                "results with napari_xray.io.store.open_store (or in napari)",
                path,
            )
        elif kind in ("png", "dicom"):
            may_skip = skip_bad and given_as_list
            groups.append(_probe_all([path], limits, skipped if may_skip else None))
        elif not path.exists():
            raise XrayReadError(f"{path} does not exist; check the path", path)
        else:
            raise XrayReadError(
                f"{path.name} is neither a PNG nor a DICOM file (expected *.png, *.dcm or "
                "*.dicom); convert it or open it with another reader",
                path,
            )
    sources = [s for group in groups for s in group]
    stacked = given_as_list or path_kind(inputs[0]) == "folder"
    if not sources:  # every file was skipped
        raise _nothing_read(skipped)

    _check_compatible(sources, stacked)
    data = _allocate(sources, stacked)
    good = []
    for src in sources:
        target = data[len(good)] if stacked else data
        try:
            _decode(src, target)
        except XrayReadError as error:
            if not (skip_bad and stacked):
                raise
            skipped.append(_skip_record(src.path, error))
            continue
        good.append(src)
    if not good:
        raise _nothing_read(skipped)
    if len(good) < len(sources):
        data = data[: len(good)]  # the good frames were decoded into the first slices

    metadata = _metadata(good, _layer_name(inputs))
    if metadata["format"] == "png":
        opened = [path for path in inputs if path_kind(path) == "folder"]
        folders = [good[0].path.parent, *opened]  # the data set keeps its CSVs above
        metadata.update(_chestxray8_metadata(good, data.shape[-2:], entry_file, folders))
    if skip_bad:
        metadata["skipped"] = skipped
    return data, metadata


def _chestxray8_metadata(sources, frame_shape, entry_file, folders) -> dict[str, Any]:
    """What a ChestX-ray8 entry file says about the PNGs ``sources`` (empty if none does)."""
    from napari_xray.io.chestxray8 import find_entry_file, frames_entries

    given = entry_file is not None
    entry_file = Path(entry_file) if given else find_entry_file(*folders)
    if entry_file is None:
        return {}
    try:
        found = frames_entries([s.name for s in sources], tuple(frame_shape), entry_file)
    except XrayReadError as error:
        if given:
            raise
        return {"chestxray8": {"entry_file": os.fspath(entry_file), "error": str(error)}}
    if not given and found["chestxray8"]["frames_described"] == 0:
        return {}
    return found


def _nothing_read(skipped: list[dict[str, str]]) -> XrayReadError:
    first = skipped[0]
    return XrayReadError(
        f"none of the {len(skipped)} files could be read; the first, {first['file_name']}: "
        f"{first['reason']}"
    )


def _skip_record(path: Path, error: Exception) -> dict[str, str]:
    return {"file_name": path.name, "path": os.fspath(path), "reason": str(error)}


def _probe_all(files: list[Path], limits, skipped: list | None) -> list[_Source]:
    """The headers of ``files``; with a ``skipped`` list, unreadable files go there instead."""
    sources = []
    for path in files:
        try:
            sources.append(_probe(path, file_kind(path), limits))
        except XrayReadError as error:
            if skipped is None:
                raise
            skipped.append(_skip_record(path, error))
    return sources


# --------------------------------------------------------------------------------------
# Header pass and stacking
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """One file to read and what its header says (nothing decoded yet)."""

    path: Path
    kind: str  # "png" | "dicom"
    header: PngHeader | DicomHeader

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.header.shape

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.header.shape[-2:]

    @property
    def dicom(self) -> dict[str, Any]:
        """Per-file DICOM metadata (see :func:`napari_xray.io.dicom.probe_dicom`)."""
        return self.header.info


def _unexpected(path: Path, error: Exception) -> XrayReadError:
    """A failure the checks did not foresee, still as an error naming the file."""
    if isinstance(error, MemoryError):
        return XrayReadError(f"not enough memory to read {path.name}; open fewer files", path)
    return XrayReadError(
        f"{path.name} could not be read ({type(error).__name__}: {error}), unexpectedly; "
        "the file may be damaged — re-download or re-export it (if it is not, please "
        "report this)",
        path,
    )


def _probe(path: Path, kind: str | None, limits: ReadLimits) -> _Source:
    try:
        if kind == "png":
            return _Source(path, kind, probe_png(path, limits))
        if kind == "dicom":
            return _Source(path, kind, probe_dicom(path, limits))
    except XrayReadError:
        raise
    except Exception as error:
        raise _unexpected(path, error) from error
    raise XrayReadError(f"{path.name} is neither a PNG nor a DICOM file", path)


def _decode(source: _Source, target: np.ndarray) -> None:
    """Decode one file into ``target``; every failure an XrayReadError naming it."""
    try:
        if source.kind == "png":
            decode_png(source.path, source.header, target)
        else:
            decode_dicom(source.path, source.header, target)
    except XrayReadError:
        raise
    except Exception as error:
        raise _unexpected(source.path, error) from error


def _sort_folder(sources: list[_Source]) -> list[_Source]:
    """Folder order: PNG by natural name (already); DICOM by series, InstanceNumber, name."""
    if not sources or any(s.kind != "dicom" for s in sources):
        return sources
    series_rank: dict[Any, int] = {}
    for s in sources:  # natural-name order of each series' first file
        series_rank.setdefault(s.header.series_uid, len(series_rank))

    def key(s: _Source):
        number = s.dicom["instance_number"]
        return (
            series_rank[s.header.series_uid],
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
        return np.dtype(np.float64 if np.dtype(np.float64) in dtypes else np.float32)
    return np.result_type(*dtypes)


def _allocate(sources: list[_Source], stacked: bool) -> np.ndarray:
    shape = (len(sources), *sources[0].frame_shape) if stacked else sources[0].shape
    dtype = _common_dtype(s.header.dtype for s in sources)
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
# Metadata and names
# --------------------------------------------------------------------------------------

_SEPARATORS = "_-. "


def _layer_name(inputs: list[Path]) -> str:
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
            {"file_name": s.name, "original_mode": s.header.original_mode}
            for s in sources
            if s.header.original_mode is not None
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
            "windows": per_file[0]["windows"],
            "identifying_attributes": sorted(
                {name for d in per_file for name in d["identifying_attributes"]}
            ),
            "identity_removed": all(d["identity_removed"] for d in per_file),
            "dicom": per_file,
        }
    )
    return metadata
