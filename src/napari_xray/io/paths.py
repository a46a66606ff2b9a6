"""What a path is: PNG, DICOM, a folder of them, or a Zarr store; natural file order.

Only cheap checks live here (``stat``, a folder listing and, for an extension-less
file, its first 132 bytes); nothing is decoded, and nothing beyond the standard
library is imported, so the napari reader can ask these questions quickly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from napari_xray.errors import XrayReadError

__all__ = [
    "DICOM_SUFFIXES",
    "PNG_SUFFIXES",
    "as_path_list",
    "file_kind",
    "holds_xray_files",
    "list_xray_files",
    "natural_sort_key",
    "path_kind",
]

PathLike = str | os.PathLike
PathOrPaths = PathLike | Sequence[PathLike]

#: File name extensions (lower case) read as PNG.
PNG_SUFFIXES = frozenset({".png"})
#: File name extensions (lower case) read as DICOM.
DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})

_DICOM_MAGIC_OFFSET = 128
# How many extension-less files holds_xray_files peeks at before giving up on a folder.
_MAX_SNIFFED_FILES = 16


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


def file_kind(path: Path, sniff: bool = True) -> str | None:
    """``"png"``, ``"dicom"`` or ``None`` for a regular file.

    The extension decides (any case); with ``sniff``, an extension-less (or
    numeric-extension) file is DICOM when it carries the ``DICM`` marker.
    """
    suffix = path.suffix.lower()
    if suffix in PNG_SUFFIXES:
        return "png"
    if suffix in DICOM_SUFFIXES:
        return "dicom"
    if sniff and _may_be_extensionless_dicom(path) and _looks_like_dicom(path):
        return "dicom"
    return None


def path_kind(path: Path) -> str | None:
    """The one place that decides what a path is.

    Returns
    -------
    str or None
        ``"png"``, ``"dicom"``, ``"folder"``, ``"zarr"`` (a ``*.zarr`` directory;
        napari-xray's own batch stores are recognised by :mod:`napari_xray.io.store`)
        or ``None`` (not ours, or it does not exist).
    """
    if path.is_dir():
        return "zarr" if path.suffix.lower() == ".zarr" else "folder"
    if path.is_file():
        return file_kind(path)
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
    files = [p for p in _folder_entries(folder) if file_kind(p) is not None]
    return sorted(files, key=lambda p: natural_sort_key(p.name))


def holds_xray_files(folder: Path) -> bool:
    """Does ``folder`` directly hold a PNG or DICOM file? Cheap; never raises.

    Extensions are looked at first; then at most 16 extension-less files are
    sniffed for the DICOM marker.
    """
    try:
        entries = _folder_entries(folder)
    except XrayReadError:
        return False
    if any(file_kind(path, sniff=False) is not None for path in entries):
        return True
    sniffed = 0
    for path in entries:
        if _may_be_extensionless_dicom(path):
            if _looks_like_dicom(path):
                return True
            sniffed += 1
            if sniffed >= _MAX_SNIFFED_FILES:
                break
    return False


def as_path_list(path_or_paths: PathOrPaths) -> tuple[list[Path], bool]:
    """Normalise a path or a list of paths.

    Returns
    -------
    (list of pathlib.Path, bool)
        The paths, and whether they were given as a list.

    Raises
    ------
    TypeError
        Neither a path (``str`` or path-like) nor an iterable of paths.
    """
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
