"""What a batch runs on: the input frames, the selected operations and their parameters.

Also the storage options the command line offers. The engine and the image reader
are imported only inside the functions that need them, so the command line can
build its help without loading NumPy, OpenCV or SciPy.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_xray.errors import BatchError, XrayError, XrayReadError
from napari_xray.io.paths import list_xray_files, natural_sort_key

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "COMPRESSIONS",
    "FLOAT_DTYPES",
    "HEADER_SAMPLE",
    "CommonFrame",
    "FilterSpec",
    "common_frame",
    "discover_inputs",
    "parse_filters",
    "parse_params",
    "parse_shape",
    "probe_frame",
    "select_by_entries",
]

#: ``--compression`` choices: codec used for the floating-point result arrays.
COMPRESSIONS = ("none", "lz4", "zstd")
#: ``--dtype`` choices: dtype of the floating-point result arrays.
FLOAT_DTYPES = ("float32", "float16")
#: How many input headers :func:`common_frame` reads at most (evenly spaced).
HEADER_SAMPLE = 4096
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class FilterSpec:
    """One result array: operation ``key``, its resolved ``params`` and stored ``dtype``."""

    key: str
    params: Mapping[str, Any]
    dtype: str


def discover_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files, folders and glob patterns into the list of frames to process.

    * A folder gives its PNG/DICOM files exactly as the reader lists them
      (:func:`napari_xray.io.paths.list_xray_files`: natural order, hidden files,
      subfolders and other files such as ``Data_Entry_2017.csv`` skipped).
    * A glob (``*``, ``?``, ``[``; ``**`` recurses) gives the matching files that
      the reader would list in their folder, in natural order, and the images of
      matching folders.
    * An existing file is taken as given (if it is not a readable image it is
      reported as a failure later, not skipped silently).

    Inputs keep the order given; a path reached twice is kept once.

    Returns
    -------
    list of pathlib.Path
        Absolute paths, never empty.

    Raises
    ------
    BatchError
        An input does not exist, a glob matches nothing, or no image was found.
    """
    found: list[Path] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            found.append(Path(key))

    listing_cache: dict[Path, set[str]] = {}

    def listed(folder: Path) -> set[str]:
        if folder not in listing_cache:
            try:
                listing_cache[folder] = {p.name for p in list_xray_files(folder)}
            except XrayReadError:
                listing_cache[folder] = set()
        return listing_cache[folder]

    for item in inputs:
        text = os.fspath(item)
        path = Path(text).expanduser()
        if path.is_dir():
            try:
                files = list_xray_files(path)
            except XrayReadError as exc:
                raise BatchError(str(exc)) from exc
            if not files:
                raise BatchError(
                    f"folder {path} holds no PNG or DICOM files; pass a folder of images, "
                    "image files or a glob such as 'images_*/*.png'"
                )
            for f in files:
                add(f)
        elif path.is_file():
            add(path)
        elif _GLOB_CHARS & set(text):
            matches = sorted(
                glob.glob(os.path.expanduser(text), recursive=True),
                key=lambda m: natural_sort_key(os.path.basename(m)),
            )
            images: list[Path] = []
            for match in map(Path, matches):
                if match.is_dir():
                    images.extend(list_xray_files(match))
                elif match.name in listed(match.parent):
                    images.append(match)
            if not images:
                raise BatchError(
                    f"the pattern {text!r} matches no PNG or DICOM file; check the pattern "
                    "(quote it so the shell does not expand it)"
                )
            for f in images:
                add(f)
        else:
            raise BatchError(f"{text} does not exist; check the path")
    if not found:
        raise BatchError("no input images; pass files, folders or glob patterns")
    return found


def select_by_entries(
    files: list[Path],
    where: str | None,
    entry_file: str | os.PathLike | None,
    log: Callable[[str], None],
    folders: Sequence[str | os.PathLike] = (),
) -> tuple[list[Path], dict | None]:
    """The inputs ``--where`` keeps, and their ChestX-ray8 entry rows for the store.

    The entry file is ``entry_file``, else the one beside the first input, in one
    of ``folders`` (the folders given as inputs) or in ``$NAPARI_XRAY_CHESTXRAY8_DIR``.
    Without ``where`` every input is kept. Returns ``(files, None)`` when there is
    no entry file, or (without ``where`` and ``entry_file``) when it has no row for
    any input.

    Raises
    ------
    BatchError
        ``where`` without an entry file, a bad condition, an unreadable entry file
        (when given or needed), or no input that meets the conditions.
    """
    from napari_xray.io.chestxray8 import (
        entries_by_image,
        entry_matches,
        find_entry_file,
        parse_where,
    )

    conditions = None
    if where is not None:
        try:
            conditions = parse_where(where)
        except XrayError as error:
            raise BatchError(str(error)) from error
    path = Path(entry_file) if entry_file is not None else find_entry_file(
        files[0].parent, *folders)
    if path is None:
        if conditions is not None:
            raise BatchError(
                "--where selects by the ChestX-ray8 entry file, and there is none beside "
                f"{files[0].parent}: pass --entries Data_Entry_2017.csv or set "
                "NAPARI_XRAY_CHESTXRAY8_DIR to its folder"
            )
        return files, None
    try:
        rows, problems = entries_by_image(path)
    except XrayError as error:
        if entry_file is None and conditions is None:
            log(f"left out the ChestX-ray8 rows: {error}")
            return files, None
        raise BatchError(str(error)) from error
    if conditions is not None:
        kept = [f for f in files if f.name in rows and entry_matches(rows[f.name], conditions)]
        unknown = sum(f.name not in rows for f in files)
        log(f"--where {where}: {len(kept)} of {len(files)} input image(s) match"
            + (f" ({unknown} have no row in {path.name})" if unknown else ""))  # fmt: skip
        if not kept:
            raise BatchError(
                f"no input image meets --where {where!r} in {path}; check the conditions "
                "(finding, view, sex, patient) and the entry file"
            )
        files = kept
    elif entry_file is None and not any(f.name in rows for f in files):
        return files, None  # an entry file nearby that says nothing of these images
    return files, {
        "entry_file": os.fspath(path),
        "malformed_rows": len(problems),
        "rows": [rows.get(f.name) for f in files],
    }


def parse_filters(text: str | Sequence[str] | None) -> list[str]:
    """The operation keys selected by ``--filters`` (``"log,sobel"`` or a list).

    ``None`` or an empty selection means every operation of
    :data:`~napari_xray.engine.operations.OPERATIONS`, in its order. A name of
    :data:`~napari_xray.engine.operations.PRESETS` (``"fast"``, ``"edges,mask"``)
    stands for its operations; a key a preset already holds is not repeated.

    Returns
    -------
    list of str
        Valid, distinct keys in the order given.

    Raises
    ------
    BatchError
        An unknown key (the message lists the valid ones) or a repeated key.
    """
    from napari_xray.engine.operations import OPERATIONS, PRESETS, get_operation

    if text is None:
        return list(OPERATIONS)
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [k.strip().lower() for k in items if k.strip()]
    if not names:
        return list(OPERATIONS)
    repeated = sorted({k for k in names if names.count(k) > 1})
    if repeated:
        raise BatchError(f"--filters names {', '.join(repeated)} more than once")
    keys: list[str] = []
    for name in names:
        if name in PRESETS:
            keys.extend(key for key in PRESETS[name] if key not in keys)
            continue
        try:
            get_operation(name)
        except KeyError:
            raise BatchError(
                f"unknown operation {name!r} in --filters; choose from {', '.join(OPERATIONS)} "
                f"or a preset: {', '.join(PRESETS)}"
            ) from None
        if name not in keys:
            keys.append(name)
    return keys


def parse_params(
    items: Iterable[str] | Mapping[str, Mapping[str, Any]] | None, keys: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Resolve every selected operation's parameters, with ``--param`` overrides.

    ``items`` holds ``"KEY.NAME=VALUE"`` strings (``"log.sigma=2"``,
    ``"mask.mode=binary"``) or a mapping ``{"log": {"sigma": 2}}``. Values are
    checked and converted by :meth:`Operation.resolve`.

    Returns
    -------
    dict
        ``{key: {name: value}}`` for every key in ``keys``: the defaults of the
        description with the overrides applied.

    Raises
    ------
    BatchError
        Malformed text, an operation not among ``keys``, an unknown parameter
        name or a value out of range.
    """
    from napari_xray.engine.operations import get_operation

    overrides: dict[str, dict[str, Any]] = {k: {} for k in keys}
    if isinstance(items, Mapping):
        pairs = [(k, n, v) for k, values in items.items() for n, v in values.items()]
    else:
        pairs = []
        for item in items or ():
            target, sep, value = item.partition("=")
            key, dot, name = target.strip().partition(".")
            if not sep or not dot or not key or not name:
                raise BatchError(
                    f"--param {item!r} is not KEY.NAME=VALUE (for example log.sigma=2)"
                )
            pairs.append((key.strip().lower(), name.strip(), value.strip()))
    for key, name, value in pairs:
        if key not in overrides:
            raise BatchError(
                f"--param {key}.{name}: {key!r} is not among the selected filters "
                f"({', '.join(keys)})"
            )
        overrides[key][name] = value
    resolved = {}
    for key in keys:
        try:
            resolved[key] = get_operation(key).resolve(overrides[key])
        except (KeyError, ValueError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise BatchError(f"--param for {key}: {message}") from None
    return resolved


def parse_shape(text: str | Sequence[int] | None) -> tuple[int, int] | None:
    """``"1024x1024"`` or ``"1024,1024"`` (rows, columns) or a pair → ``(1024, 1024)``.

    ``None`` stays ``None``.

    Raises
    ------
    BatchError
        Not two positive integers.
    """
    if text is None:
        return None
    if isinstance(text, str):
        parts = text.lower().replace("×", "x").replace(",", "x").split("x")
    else:
        parts = list(text)
    try:
        shape = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise BatchError(
            f"--shape must be ROWSxCOLUMNS (or ROWS,COLUMNS) such as 1024x1024, got {text!r}"
        )
    return shape  # type: ignore[return-value]


@dataclass(frozen=True)
class CommonFrame:
    """The frame size and pixel type most inputs have, and the inputs that differ."""

    shape: tuple[int, int]
    dtype: str
    count: int  # inputs of that size and type, among those probed
    probed: int  # headers read (all inputs, or an evenly spaced sample)
    odd: list[tuple[str, str]]  # (file name, what it is) of probed inputs that differ


def common_frame(
    paths: Sequence[Path], shape: tuple[int, int] | None = None
) -> CommonFrame | None:
    """The most common (frame size, pixel type) among the inputs' headers.

    Only headers are read (nothing is decoded): every input's when there are at
    most :data:`HEADER_SAMPLE`, otherwise that many evenly spaced ones. With
    ``shape`` given, only inputs of that size count. A tie goes to the pair met
    first in input order. Unreadable files and multi-frame DICOM files are left
    out (the batch reports them as failures).

    Returns
    -------
    CommonFrame or None
        ``None`` when no header could be read.
    """
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    if len(paths) > HEADER_SAMPLE:
        step = len(paths) / HEADER_SAMPLE
        sample = [paths[int(i * step)] for i in range(HEADER_SAMPLE)]
    else:
        sample = list(paths)
    with ThreadPoolExecutor(max_workers=8) as pool:
        headers = list(pool.map(_frame_header, sample))
    found = [(p, h) for p, h in zip(sample, headers, strict=True) if h is not None]
    counts = Counter(h for _, h in found if shape is None or h[0] == tuple(shape))
    if not counts:
        return None
    best = max(counts.values())
    common = next(h for _, h in found if counts.get(h) == best)
    odd = [
        (p.name, f"{h[0][0]}×{h[0][1]} {h[1]}" if len(h[0]) == 2 else f"{h[0][0]} frames")
        for p, h in found
        if h != common
    ]
    return CommonFrame(common[0], common[1], best, len(sample), odd)


def _frame_header(path: Path) -> tuple[tuple[int, ...], str] | None:
    """``(shape, dtype name)`` of the decoded frame from the file's header, or None."""
    from napari_xray.io.dicom import probe_dicom
    from napari_xray.io.paths import file_kind
    from napari_xray.io.png import probe_png

    try:
        kind = file_kind(path)
        if kind == "png":
            header = probe_png(path)
        elif kind == "dicom":
            header = probe_dicom(path)
        else:
            return None
    except (XrayReadError, OSError, ValueError, TypeError, MemoryError):
        return None
    shape = tuple(int(n) for n in header.shape)
    return shape, header.dtype.name


def probe_frame(
    paths: Sequence[Path], shape: tuple[int, int] | None = None, dtype: str | None = None
) -> tuple[int, np.ndarray]:
    """The first input that reads as a single 2-D image (of ``shape`` and ``dtype``, if given).

    Returns
    -------
    (int, numpy.ndarray)
        Its index in ``paths`` and the frame.

    Raises
    ------
    BatchError
        No input can be read (the message quotes the first error).
    """
    from napari_xray.io.read import read_xray

    first_error = None
    for index, path in enumerate(paths):
        try:
            frame = read_xray(path)
        except (XrayReadError, OSError, ValueError) as exc:
            first_error = first_error or str(exc)
            continue
        if (
            frame.ndim == 2
            and (shape is None or tuple(frame.shape) == tuple(shape))
            and (dtype is None or frame.dtype.name == dtype)
        ):
            return index, frame
        first_error = first_error or f"{path.name} has shape {frame.shape} ({frame.dtype})"
    wanted = f" of size {shape[0]}×{shape[1]}" if shape else ""
    raise BatchError(
        f"none of the {len(paths)} inputs is a readable single frame{wanted} "
        f"(first problem: {first_error})"
    )
