"""ChestX-ray8's metadata files: the entry file (one row per image: findings, patient,
view, original size and pixel spacing) and the box file (findings outlined on the
1024×1024 PNGs).

Both are parsed by position, not by header name, because the copies in circulation
name their columns differently. A malformed row is reported (line number and why)
and left out; it never stops the rest of the file from being read.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from functools import lru_cache
from pathlib import Path

from napari_xray.errors import XrayReadError

__all__ = [
    "BOX_FILE_NAMES",
    "DIR_VARIABLE",
    "ENTRY_FILE_NAMES",
    "MetadataWarning",
    "NO_FINDING",
    "SPACING_SOURCE",
    "BOX_IMAGE_SHAPE",
    "WHERE_KEYS",
    "box_rectangles",
    "describe_frames",
    "entries_by_image",
    "entry_matches",
    "find_box_file",
    "find_entry_file",
    "findings_text",
    "frames_entries",
    "parse_where",
    "png_pixel_size",
    "read_boxes",
    "read_entries",
]

#: Names the entry file goes by: the 2017 release and its 2020 revision.
ENTRY_FILE_NAMES = ("Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv")
#: Name of the box file.
BOX_FILE_NAMES = ("BBox_List_2017.csv",)
#: Environment variable naming a folder that holds the entry file (and the box file).
DIR_VARIABLE = "NAPARI_XRAY_CHESTXRAY8_DIR"
#: Where a ChestX-ray8 PNG's pixel size comes from (the PNG itself says nothing).
SPACING_SOURCE = (
    "derived from the ChestX-ray8 entry file (OriginalImagePixelSpacing × "
    "OriginalImage size / PNG size), not read from the image"
)
#: What the entry file says for an image without findings (its ``findings`` list is empty).
NO_FINDING = "No Finding"
#: The box file's names that the entry file spells differently.
_BOX_SYNONYMS = {"Infiltrate": "Infiltration"}
# Ages above this are shown as they are, flagged as implausible.
_OLDEST_PLAUSIBLE_AGE = 120
_ENTRY_FIELDS = 11
_BOX_FIELDS = 6
# Show at most this many problems in the warning (all of them are in `problems`).
_PROBLEMS_SHOWN = 5


class MetadataWarning(UserWarning):
    """Rows of a ChestX-ray8 metadata file were malformed and left out."""


def read_entries(path, problems: list | None = None) -> list[dict]:
    """The rows of a ChestX-ray8 entry file (``Data_Entry_2017.csv`` or its v2020 variant).

    Either header (``Patient Gender`` or ``Patient Sex``), with or without the
    trailing comma, is accepted; the columns are read by position. Each row
    becomes a dict:

    * ``image`` (the PNG's file name), ``line`` (its line number in the file);
    * ``findings``: list of finding names, empty for "No Finding";
    * ``follow_up``, ``patient_id``: int;
    * ``age``: int (years; a DICOM age string such as ``058Y`` is read too),
      ``age_plausible``: False for an age above 120 (shown as it is, not corrected);
    * ``sex`` ("M"/"F"), ``view`` ("PA", "AP" …);
    * ``original_size``: (width, height) in pixels; ``original_spacing``: (x, y)
      in mm, both of the image before it was resized to the PNG.

    Parameters
    ----------
    path : str or os.PathLike
        The entry file.
    problems : list, optional
        If given, each malformed row is appended to it as ``{"line": n, "reason":
        "…"}`` and no warning is issued; otherwise one :class:`MetadataWarning`
        lists them.

    Raises
    ------
    XrayReadError
        If the file cannot be read or is not an entry file at all.
    """
    return _read_rows(path, "entry", _ENTRY_FIELDS, _entry, problems)


def read_boxes(path, problems: list | None = None) -> list[dict]:
    """The boxes of a ChestX-ray8 box file (``BBox_List_2017.csv``).

    Each row becomes a dict: ``image``, ``finding`` (``Infiltrate`` is spelt
    ``Infiltration``, as in the entry file), ``x``, ``y`` (the top-left corner)
    and ``width``, ``height``, in pixels of the 1024×1024 PNG, and ``line``.

    ``problems`` works as in :func:`read_entries`.

    Raises
    ------
    XrayReadError
        If the file cannot be read or is not a box file at all.
    """
    return _read_rows(path, "box", _BOX_FIELDS, _box, problems)


def findings_text(entry: dict, separator: str = ", ") -> str:
    """An entry row's findings joined by ``separator``, or "No Finding"."""
    return separator.join(entry["findings"]) or NO_FINDING


def png_pixel_size(entry: dict, png_shape=(1024, 1024)) -> tuple[float, float]:
    """The size in mm of one pixel of the resized PNG, as (down, across).

    The data set's PNGs were resized from ``original_size`` to ``png_shape``
    (rows, columns), so a PNG pixel measures ``original_spacing × original size /
    PNG size`` along each axis: for ``00000011_001.png`` (2500 × 2048 at 0.168 mm)
    0.336 mm down and 0.410 mm across. It is derived from the entry file, not
    read from the image.
    """
    (width, height), (spacing_x, spacing_y) = entry["original_size"], entry["original_spacing"]
    rows, columns = png_shape
    return spacing_y * height / rows, spacing_x * width / columns


#: Folders above the images' own that are searched too: the data set keeps its CSV
#: files two levels above the PNGs (``images_001/images/``).
_LEVELS_UP = 2


def _places(folders) -> list[Path]:
    """Where metadata files are looked for: ``folders`` in order, the first one's
    parents up to :data:`_LEVELS_UP` levels, then ``$NAPARI_XRAY_CHESTXRAY8_DIR``."""
    places = [Path(folder) for folder in folders if folder is not None]
    if places:
        places += list(places[0].absolute().parents)[:_LEVELS_UP]
    if os.environ.get(DIR_VARIABLE):
        places.append(Path(os.environ[DIR_VARIABLE]))
    return places


def find_entry_file(*folders) -> Path | None:
    """The entry file for images in ``folders``: in the first that has one, else in
    ``$NAPARI_XRAY_CHESTXRAY8_DIR``.

    In each place the released names (:data:`ENTRY_FILE_NAMES`) are looked for
    first, then any ``Data_Entry_2017*.csv`` (such as the sample's rows). The data
    set keeps its CSV files above the ``images_NNN/images/`` folders, so the first
    folder's parents are looked in too (two levels).
    """
    for place in _places(folders):
        for name in ENTRY_FILE_NAMES:
            if (place / name).is_file():
                return place / name
        others = sorted(place.glob("Data_Entry_2017*.csv")) if place.is_dir() else []
        if others:
            return others[0]
    return None


def find_box_file(*folders) -> Path | None:
    """The box file for images in ``folders``, looked for as :func:`find_entry_file` does."""
    for place in _places(folders):
        for name in BOX_FILE_NAMES:
            if (place / name).is_file():
                return place / name
    return None


#: The size of the PNGs the box file's coordinates are in.
BOX_IMAGE_SHAPE = (1024, 1024)


def box_rectangles(boxes, file_names, stacked: bool, frame_shape=BOX_IMAGE_SHAPE) -> list[dict]:
    """The boxes of the frames ``file_names`` as rectangles in a layer's data coordinates.

    Each result holds ``vertices`` (4 corners, clockwise from the top left, as
    ``(frame, row, column)`` for a stack or ``(row, column)`` for one frame),
    ``finding``, ``image`` and ``frame``. A box's ``x, y`` is its top-left corner
    measured from the image's top-left corner, in pixels of the 1024×1024 PNG
    (scaled to ``frame_shape`` for frames resized again); napari puts pixel
    centres at whole coordinates, so that corner lies at ``(y − 0.5, x − 0.5)``.
    Boxes of other images are left out.
    """
    frame_of = {name: index for index, name in enumerate(file_names)}
    down = frame_shape[0] / BOX_IMAGE_SHAPE[0]
    across = frame_shape[1] / BOX_IMAGE_SHAPE[1]
    rectangles = []
    for box in boxes:
        frame = frame_of.get(box["image"])
        if frame is None:
            continue
        top, left = box["y"] * down - 0.5, box["x"] * across - 0.5
        bottom, right = top + box["height"] * down, left + box["width"] * across
        corners = [(top, left), (top, right), (bottom, right), (bottom, left)]
        vertices = [(frame, *corner) if stacked else corner for corner in corners]
        rectangles.append(
            {"vertices": vertices, "finding": box["finding"], "image": box["image"],
             "frame": frame}
        )  # fmt: skip
    return rectangles


def entries_by_image(path) -> tuple[dict[str, dict], list[dict]]:
    """The rows of entry file ``path`` by image name, and its malformed rows.

    Read once per version of the file (the full file has 112,120 rows).

    Raises
    ------
    XrayReadError
        As :func:`read_entries`.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (os.fspath(path.resolve()), stat and stat.st_mtime_ns, stat and stat.st_size)
    return _entries_by_image(*key)


@lru_cache(maxsize=4)
def _entries_by_image(path: str, _mtime, _size) -> tuple[dict[str, dict], list[dict]]:
    problems: list[dict] = []
    entries = read_entries(path, problems=problems)
    return {entry["image"]: entry for entry in entries}, problems


def frames_entries(file_names, frame_shape, entry_file) -> dict:
    """What the entry file says about the frames ``file_names`` of one layer.

    :func:`describe_frames` of the entry file's rows for these names.

    Raises
    ------
    XrayReadError
        As :func:`read_entries`.
    """
    rows, problems = entries_by_image(entry_file)
    return describe_frames([rows.get(name) for name in file_names], frame_shape, entry_file,
                           malformed_rows=len(problems))  # fmt: skip


def describe_frames(rows, frame_shape, entry_file, malformed_rows: int = 0) -> dict:
    """A layer's metadata for frames whose entry rows are ``rows`` (``None``: no row).

    Returns a dict with

    * ``frames``: per frame, its row (see :func:`read_entries`) with
      ``pixel_size_mm`` (down, across; :func:`png_pixel_size` for ``frame_shape``),
      or ``None``;
    * ``pixel_spacing``: the pixel size shared by every frame, else ``None``
      (each frame then keeps its own); ``pixel_spacing_source``: :data:`SPACING_SOURCE`;
    * ``chestxray8``: the entry file, how many frames it describes, how many of
      its rows were malformed, the views and whether the frames mix them.
    """
    frames = []
    for row in rows:
        if row is not None:
            row = {**row, "findings": list(row["findings"]),
                   "original_size": tuple(row["original_size"]),
                   "original_spacing": tuple(row["original_spacing"])}
            row["pixel_size_mm"] = png_pixel_size(row, frame_shape)
        frames.append(row)
    sizes = {row["pixel_size_mm"] for row in frames if row is not None}
    described = sum(row is not None for row in frames)
    shared = sizes.pop() if len(sizes) == 1 and described == len(frames) else None
    views = sorted({row["view"] for row in frames if row is not None})
    return {
        "frames": frames,
        "pixel_spacing": shared,
        "pixel_spacing_source": SPACING_SOURCE if shared is not None else None,
        "chestxray8": {
            "entry_file": os.fspath(entry_file),
            "frames_described": described,
            "malformed_rows": malformed_rows,
            "views": views,
            "mixed_views": len(views) > 1,
        },
    }  # fmt: skip


#: What ``batch --where`` can select on, and the entry row's field each reads.
WHERE_KEYS = {"finding": "findings", "view": "view", "sex": "sex", "patient": "patient_id"}


def parse_where(text: str) -> list[tuple[str, frozenset[str]]]:
    """``"finding=Effusion,view=PA"`` as conditions that all must hold.

    Keys: ``finding`` (the image has this finding; ``No Finding`` selects images
    without any), ``view`` (PA, AP), ``sex`` (M, F), ``patient`` (its id).
    ``KEY=A|B`` accepts either value. Values compare without regard to case.

    Raises
    ------
    XrayError
        An unknown key, or a condition without ``=`` or a value.
    """
    from napari_xray.errors import XrayError

    conditions = []
    for part in (p.strip() for p in text.split(",")):
        key, equals, values = part.partition("=")
        key = key.strip().lower()
        choices = frozenset(v.strip().lower() for v in values.split("|") if v.strip())
        if not equals or not choices:
            raise XrayError(f"--where {text!r}: {part!r} is not KEY=VALUE; write e.g. "
                            "'finding=Effusion,view=PA'")  # fmt: skip
        if key not in WHERE_KEYS:
            raise XrayError(f"--where {text!r}: unknown key {key!r}; use "
                            f"{', '.join(WHERE_KEYS)}")  # fmt: skip
        conditions.append((key, choices))
    return conditions


def entry_matches(entry: dict, conditions) -> bool:
    """Whether the entry row ``entry`` meets every condition of :func:`parse_where`."""
    for key, choices in conditions:
        value = entry[WHERE_KEYS[key]]
        if key == "finding":
            names = {name.lower() for name in value} or {NO_FINDING.lower()}
            if not names & choices:
                return False
        elif str(value).lower() not in choices:
            return False
    return True


# --------------------------------------------------------------------------- parsing


class _Malformed(ValueError):
    """Why one row cannot be read."""


def _read_rows(path, kind: str, fields: int, parse, problems: list | None) -> list[dict]:
    path = Path(path)
    name = (ENTRY_FILE_NAMES if kind == "entry" else BOX_FILE_NAMES)[0]
    expected = f"a ChestX-ray8 {kind} file ({name})"
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as error:
        raise XrayReadError(
            f"cannot read {path}: {error.strerror or error}; pass {expected}", path
        ) from error
    rows, found = [], []
    with handle:
        try:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header or header[0].strip() != "Image Index":
                first = ",".join(header or [])[:60]
                raise XrayReadError(
                    f"{path} is not {expected}: its first line is {first!r}, not a header "
                    "starting with 'Image Index'", path
                )
            columns = len(_without_trailing_empties(header, 0))
            if columns != fields:
                raise XrayReadError(
                    f"{path} is not {expected}: its header has {columns} columns, not "
                    f"{fields}", path
                )
            for values in reader:
                line = reader.line_num
                values = _without_trailing_empties(values, fields)
                if not values or values == [""]:
                    continue  # a blank line
                try:
                    if len(values) != fields:
                        raise _Malformed(f"{len(values)} fields, expected {fields}")
                    row = parse(values)
                except _Malformed as why:
                    found.append({"line": line, "reason": str(why)})
                    continue
                row["line"] = line
                rows.append(row)
        except (UnicodeDecodeError, csv.Error) as error:
            raise XrayReadError(
                f"{path} is not {expected}: {error} (near line {reader.line_num})", path
            ) from error
    if problems is not None:
        problems.extend(found)
    elif found:
        shown = "; ".join(f"line {p['line']}: {p['reason']}" for p in found[:_PROBLEMS_SHOWN])
        more = f" (and {len(found) - _PROBLEMS_SHOWN} more)" if len(found) > _PROBLEMS_SHOWN else ""
        warnings.warn(
            f"{path}: left out {len(found)} malformed row(s): {shown}{more}",
            MetadataWarning,
            stacklevel=3,
        )
    return rows


def _without_trailing_empties(values: list[str], keep: int) -> list[str]:
    """``values`` without the empty fields after its first ``keep``: the released files
    end every line with a comma or three."""
    end = len(values)
    while end > keep and not values[end - 1].strip():
        end -= 1
    return values[:end]


def _entry(values: list[str]) -> dict:
    image, labels, follow_up, patient, age, sex, view, width, height, spacing_x, spacing_y = (
        value.strip() for value in values
    )
    age_years = _age(age)
    return {
        "image": _image_name(image),
        "findings": _findings(labels),
        "follow_up": _whole(follow_up, "Follow-up #"),
        "patient_id": _whole(patient, "Patient ID"),
        "age": age_years,
        "age_plausible": age_years <= _OLDEST_PLAUSIBLE_AGE,
        "sex": _choice(sex.upper(), "sex", ("M", "F")),
        "view": _text(view.upper(), "View Position"),
        "original_size": (_positive_whole(width, "width"), _positive_whole(height, "height")),
        "original_spacing": (_positive(spacing_x, "pixel spacing x"),
                             _positive(spacing_y, "pixel spacing y")),
    }  # fmt: skip


def _box(values: list[str]) -> dict:
    image, finding, x, y, width, height = (value.strip() for value in values)
    finding = _text(finding, "Finding Label")
    return {
        "image": _image_name(image),
        "finding": _BOX_SYNONYMS.get(finding, finding),
        "x": _finite(x, "x"),
        "y": _finite(y, "y"),
        "width": _positive(width, "w"),
        "height": _positive(height, "h"),
    }


def _image_name(value: str) -> str:
    if not value or os.path.basename(value) != value:
        raise _Malformed(f"image name {value!r} is not a file name")
    return value


def _findings(value: str) -> list[str]:
    names = [name.strip() for name in value.split("|")]
    if not value or any(not name for name in names):
        raise _Malformed(f"finding labels {value!r} has an empty name")
    return [] if names == [NO_FINDING] else names


def _text(value: str, column: str) -> str:
    if not value:
        raise _Malformed(f"{column} is empty")
    return value


def _choice(value: str, column: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _Malformed(f"{column} {value!r} is not one of {', '.join(allowed)}")
    return value


def _whole(value: str, column: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise _Malformed(f"{column} {value!r} is not a whole number")
    return int(value)


def _positive_whole(value: str, column: str) -> int:
    number = _whole(value, column)
    if number == 0:
        raise _Malformed(f"{column} is 0")
    return number


def _age(value: str) -> int:
    # Some copies write DICOM age strings (058Y); only years are whole years.
    digits = value[:-1] if value[-1:].upper() == "Y" else value
    if not (digits.isascii() and digits.isdigit()):
        raise _Malformed(f"age {value!r} is not a whole number of years")
    return int(digits)


def _finite(value: str, column: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _Malformed(f"{column} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise _Malformed(f"{column} {value!r} is not finite")
    return number


def _positive(value: str, column: str) -> float:
    number = _finite(value, column)
    if not number > 0:
        raise _Malformed(f"{column} {value!r} is not positive")
    return number
