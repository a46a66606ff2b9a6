"""What a path is: PNG, DICOM, a folder of them, or a Zarr store; natural file order.

Only cheap checks live here (``stat``, a folder listing and, for an extension-less
file, its first 132 bytes); nothing is decoded, and nothing beyond the standard
library is imported, so the napari reader can ask these questions quickly.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, BinaryIO

from napari_xray.errors import XrayReadError

__all__ = [
    "DICOM_SUFFIXES",
    "PNG_SUFFIXES",
    "as_path_list",
    "file_kind",
    "holds_xray_files",
    "list_xray_files",
    "natural_sort_key",
    "open_for_reading",
    "path_kind",
    "write_replacing",
]

PathLike = str | os.PathLike
PathOrPaths = PathLike | Sequence[PathLike]

#: File name extensions (lower case) read as PNG.
PNG_SUFFIXES = frozenset({".png"})
#: File name extensions (lower case) read as DICOM.
DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})

_DICOM_MAGIC_OFFSET = 128
# How many extension-less files holds_xray_files peeks at before giving up on a folder,
# and in how many folders of a tree at most.
_MAX_SNIFFED_FILES = 16
_MAX_TREE_FOLDERS = 64


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


def open_for_reading(path: Path) -> BinaryIO:
    """Open ``path`` for binary reading; every failure is an XrayReadError saying what to do.

    Raises
    ------
    XrayReadError
        The file does not exist, is a folder, may not be read, or cannot be opened.
    """
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError as exc:
        raise XrayReadError(f"{path} does not exist; check the path", path) from exc
    except IsADirectoryError as exc:
        raise XrayReadError(f"{path} is a folder, not an image file", path) from exc
    except PermissionError as exc:
        raise XrayReadError(
            f"no permission to read {path}; check the file's permissions", path
        ) from exc
    except (OSError, ValueError) as exc:  # e.g. a name too long, a NUL byte in it
        raise XrayReadError(f"{path} cannot be opened ({exc}); check the path", path) from exc


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
    return (suffix == "" or suffix[1:].isdigit()) and not _is_dicomdir(path)


def _is_dicomdir(path: Path) -> bool:
    """``DICOMDIR`` (or a variant such as ``DICOMDIR-implicit``) indexes a DICOM tree; no image."""
    return path.name.upper().startswith("DICOMDIR")


def file_kind(path: Path, sniff: bool = True) -> str | None:
    """``"png"``, ``"dicom"`` or ``None`` for a regular file.

    The extension decides (any case); with ``sniff``, an extension-less (or
    numeric-extension) file is DICOM when it carries the ``DICM`` marker.
    """
    suffix = path.suffix.lower()
    if _is_dicomdir(path):
        return None
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


def _folder_entries(folder: Path, *, folders: bool = False) -> list[Path]:
    """The visible files (with ``folders``: the visible sub-folders) directly in ``folder``."""
    try:
        with os.scandir(folder) as it:
            return [
                Path(entry.path)
                for entry in it
                if not entry.name.startswith(".")
                and (entry.is_dir() if folders else entry.is_file())
            ]
    except OSError as exc:
        raise XrayReadError(f"cannot list folder {folder}: {exc}", folder) from exc


#: How deep below a folder its sub-folders are searched (patient/study/series/… of a
#: DICOMDIR tree) when it holds no image files itself.
_MAX_TREE_DEPTH = 6


def _direct_xray_files(folder: Path) -> list[Path]:
    files = [p for p in _folder_entries(folder) if file_kind(p) is not None]
    return sorted(files, key=lambda p: natural_sort_key(p.name))


def _tree_xray_files(folder: Path, depth: int) -> list[Path]:
    """Every image file in the sub-folders of ``folder``, folder by folder in natural order."""
    if depth <= 0:
        return []
    found: list[Path] = []
    subfolders = _folder_entries(folder, folders=True)
    for sub in sorted(subfolders, key=lambda p: natural_sort_key(p.name)):
        found.extend(_direct_xray_files(sub))
        found.extend(_tree_xray_files(sub, depth - 1))
    return found


def list_xray_files(folder: PathLike) -> list[Path]:
    """The PNG and DICOM files of ``folder``, in natural name order.

    The files directly inside ``folder``; when it holds none, the files of its
    sub-folders, folder by folder in natural order, down to 6 levels (a DICOMDIR
    tree of patient/study/series folders). Hidden files and folders, ``DICOMDIR``
    and files with other extensions are skipped; extension-less files are
    included when they carry the DICOM ``DICM`` marker. (DICOM files are
    re-ordered by ``InstanceNumber`` when read.)

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
    return _direct_xray_files(folder) or _tree_xray_files(folder, _MAX_TREE_DEPTH)


def _directly_holds_xray_files(folder: Path, budget: list[int]) -> bool:
    entries = _folder_entries(folder)
    if any(file_kind(path, sniff=False) is not None for path in entries):
        return True
    for path in entries:
        if budget[0] <= 0:
            break
        if _may_be_extensionless_dicom(path):
            budget[0] -= 1
            if _looks_like_dicom(path):
                return True
    return False


def holds_xray_files(folder: Path) -> bool:
    """Does ``folder`` (or, when it holds no files of its own, a sub-folder) hold a PNG or DICOM?

    Cheap and never raises: extensions are looked at first; then at most 16
    extension-less files in all are sniffed for the DICOM marker, in at most 64
    folders down to 6 levels.
    """
    budget = [_MAX_SNIFFED_FILES]
    pending = [(Path(folder), 0)]
    visited = 0
    try:
        while pending and visited < _MAX_TREE_FOLDERS:
            current, depth = pending.pop(0)
            visited += 1
            if _directly_holds_xray_files(current, budget):
                return True
            if depth < _MAX_TREE_DEPTH:
                subfolders = _folder_entries(current, folders=True)
                pending.extend((sub, depth + 1) for sub in sorted(subfolders))
    except XrayReadError:
        return False
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


def write_replacing(path: PathLike, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Write a file through ``write(handle)`` beside ``path``, then rename it into place,
    so that ``path`` is never half-written (UTF-8 text, or bytes with ``binary``)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist; create it first")
    partial = folder / f".{path.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        with (open(partial, "xb") if binary else
              open(partial, "x", newline="", encoding="utf-8")) as handle:
            write(handle)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
