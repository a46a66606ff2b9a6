"""Measurements on a radiograph: intensity profiles along a line or a path, and the
statistics of regions (rectangles, ellipses, polygons), in pixels or, given the
pixel size, in millimetres.

Profiles sample the image in float64 as ``skimage.measure.profile_line`` samples
it (the same points, spline order and "reflect" border); a pixel belongs to a
region when its centre does, as ``skimage.draw`` decides it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "FIGURES",
    "ROI_TYPES",
    "line_profile",
    "path_length",
    "path_profile",
    "region_statistics",
    "roi_mask",
    "roi_window",
    "roi_statistics",
]

#: Shape types :func:`roi_statistics` measures (napari's names).
ROI_TYPES = ("rectangle", "ellipse", "polygon")


def _frame(image) -> np.ndarray:
    frame = np.asarray(image)
    if frame.ndim != 2 or frame.size == 0:
        raise ValueError(f"pass one 2D frame (rows, columns), got an array of shape {frame.shape}")
    if frame.dtype == bool:
        return frame.view(np.uint8)
    if not np.issubdtype(frame.dtype, np.number) or np.issubdtype(frame.dtype, np.complexfloating):
        raise ValueError(f"the frame must hold real numbers, not {frame.dtype}")
    if frame.dtype == np.float16:  # map_coordinates cannot read it
        return frame.astype(np.float32)
    return frame


def _spacing(spacing) -> tuple[float, float]:
    if spacing is None:
        return 1.0, 1.0
    down, across = (float(v) for v in spacing)
    if not (down > 0 and across > 0 and math.isfinite(down) and math.isfinite(across)):
        raise ValueError(f"spacing must be two positive sizes (down, across), got {spacing}")
    return down, across


def _profile_coordinates(start, end, width: int) -> np.ndarray:
    """skimage's ``_line_profile_coordinates``: (2, samples, width) sample points."""
    start, end = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    d_row, d_col = end - start
    theta = np.arctan2(d_row, d_col)
    samples = int(np.ceil(np.hypot(d_row, d_col) + 1))
    rows = np.linspace(start[0], end[0], samples)
    cols = np.linspace(start[1], end[1], samples)
    col_half = (width - 1) * np.sin(-theta) / 2
    row_half = (width - 1) * np.cos(theta) / 2
    # The same floating-point operations as skimage: order-0 sampling of points
    # that fall on a pixel boundary then picks the same pixel.
    return np.stack([np.linspace(rows - row_half, rows + row_half, width, axis=-1),
                     np.linspace(cols - col_half, cols + col_half, width, axis=-1)])


def line_profile(
    image, start, end, width: int = 1, order: int = 1, spacing=None
) -> tuple[np.ndarray, np.ndarray]:
    """Intensities along the line from ``start`` to ``end`` (both included).

    Parameters
    ----------
    image : array_like, shape (H, W)
        One frame, any real dtype (sampled in float64).
    start, end : (row, column)
        The line's ends in pixel coordinates (napari's data coordinates).
    width : int
        Pixels across the line whose mean is taken at each point (>= 1).
    order : int
        Spline order of the interpolation, 0 (nearest) to 5.
    spacing : (down, across) in mm, optional
        The pixel size; distances are then in mm, else in pixels.

    Returns
    -------
    (distance, values) : two float64 arrays of ``ceil(length + 1)`` samples
        ``values`` equals ``skimage.measure.profile_line(image.astype(float),
        start, end, linewidth=width, order=order, mode="reflect")``.

    Raises
    ------
    ValueError
        A frame that is not 2D or numeric, a width below 1, an order outside 0…5,
        non-finite ends or a bad spacing.
    """
    frame = _frame(image)
    width, order = int(width), int(order)
    if width < 1:
        raise ValueError(f"width must be at least 1 pixel, got {width}")
    if not 0 <= order <= 5:
        raise ValueError(f"order must be 0 (nearest) to 5, got {order}")
    ends = np.asarray([start, end], dtype=float)
    if ends.shape != (2, 2) or not np.isfinite(ends).all():
        raise ValueError(f"start and end must be finite (row, column) pairs, got {start}, {end}")
    down, across = _spacing(spacing)
    coordinates = _profile_coordinates(ends[0], ends[1], width)
    # Interpolated in double precision and written as float64: the frame itself is
    # not converted (skimage converts nothing and rounds to the input's dtype).
    samples = ndimage.map_coordinates(
        frame, coordinates, output=np.float64, order=order, mode="reflect",
        prefilter=order > 1,
    )
    values = np.flip(samples, axis=1).mean(axis=1)  # skimage sums in this order
    d_row, d_col = ends[1] - ends[0]
    distance = np.linspace(0.0, math.hypot(d_row * down, d_col * across), len(values))
    return distance, values


def path_profile(image, vertices, width: int = 1, order: int = 1, spacing=None):
    """:func:`line_profile` along a path of straight segments, as one profile.

    ``vertices`` is a sequence of (row, column) points; each segment's profile
    follows the last, its first sample (the shared vertex) left out. Distances
    run on along the whole path.
    """
    points = _path_points(vertices)
    distances, values, offset = [], [], 0.0
    for index, (start, end) in enumerate(zip(points[:-1], points[1:], strict=True)):
        distance, value = line_profile(image, start, end, width, order, spacing)
        skip = 0 if index == 0 else 1
        distances.append(distance[skip:] + offset)
        values.append(value[skip:])
        offset += distance[-1]
    return np.concatenate(distances), np.concatenate(values)


def _path_points(vertices) -> np.ndarray:
    """A path's (row, column) vertices; napari's (frame, row, column) lose the frame."""
    points = np.asarray(vertices, dtype=float)
    if points.ndim == 2 and points.shape[1] == 3:
        points = points[:, 1:]
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 2:
        raise ValueError("a line or path needs at least two (row, column) vertices")
    return points


def path_length(vertices, spacing=None) -> float:
    """The length of a line or path through ``vertices`` (row, column), in mm or pixels."""
    points = _path_points(vertices)
    down, across = _spacing(spacing)
    steps = np.diff(points, axis=0) * (down, across)
    return float(np.hypot(steps[:, 0], steps[:, 1]).sum())


def roi_window(vertices, shape_type: str, frame_shape) -> tuple[tuple[slice, slice], np.ndarray]:
    """Where one region lies in a frame: its bounding box, clipped to ``frame_shape``,
    and the pixels inside it there (those whose centre lies inside the region, as
    ``skimage.draw.polygon`` and ``skimage.draw.ellipse`` decide).

    ``vertices`` are napari's (row, column) points of a ``rectangle``, ``polygon``
    or ``ellipse`` (the four corners of its bounding box, which may be turned).

    Returns
    -------
    ((rows, columns), inside)
        Two slices into the frame and a bool array of their shape (empty when the
        region lies off the frame).
    """
    points = np.asarray(vertices, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
        raise ValueError(f"a {shape_type} needs at least three (row, column) vertices")
    if shape_type not in ROI_TYPES:
        raise ValueError(
            f"shape type {shape_type!r} has no area; use one of {', '.join(ROI_TYPES)}"
        )
    if shape_type == "ellipse" and len(points) != 4:
        raise ValueError("an ellipse needs the four corners of its bounding box")
    height, width = (int(n) for n in frame_shape)
    top, left = np.maximum(np.ceil(points.min(axis=0)).astype(int), 0)
    bottom = max(min(int(np.floor(points[:, 0].max())) + 1, height), top)
    right = max(min(int(np.floor(points[:, 1].max())) + 1, width), left)
    window = (slice(int(top), bottom), slice(int(left), right))
    rows = np.arange(top, bottom, dtype=float)
    cols = np.arange(left, right, dtype=float)
    if not (len(rows) and len(cols)):
        return window, np.zeros((len(rows), len(cols)), dtype=bool)
    if shape_type == "ellipse":
        return window, _inside_ellipse(points, rows, cols)
    return window, _inside_polygon(points, rows, cols)


def roi_mask(vertices, shape_type: str, frame_shape) -> np.ndarray:
    """The pixels of one region as a bool mask of ``frame_shape`` (see :func:`roi_window`)."""
    window, inside = roi_window(vertices, shape_type, frame_shape)
    mask = np.zeros(tuple(frame_shape), dtype=bool)
    mask[window] = inside
    return mask


#: The figures :func:`region_statistics` gives for a region's values.
FIGURES = ("mean", "std", "min", "max", "median")


def region_statistics(data, window, spacing=None) -> dict:
    """Count, area and figures of the pixels ``window`` (from :func:`roi_window`) marks,
    in one frame ``(H, W)`` or in every frame of a stack ``(N, H, W)``.

    Returns
    -------
    dict
        ``count`` (pixels measured, frames included), ``area_px`` (the region's
        pixels in one frame), ``area_mm2`` (None without ``spacing``) and the
        :data:`FIGURES` in float64 (None when the region holds no pixel).
    """
    (rows, cols), inside = window
    down, across = _spacing(spacing)
    data = np.asarray(data)
    if data.ndim not in (2, 3):
        raise ValueError(f"pass a frame (H, W) or a stack (N, H, W), got shape {data.shape}")
    # Frame by frame: a 2D mask after an Ellipsis is a slow path of NumPy's indexing.
    parts = [plane[rows, cols][inside] for plane in ([data] if data.ndim == 2 else data)]
    values = np.concatenate(parts) if parts else np.empty(0, data.dtype)
    area = int(inside.sum())
    if not values.size:
        figures = dict.fromkeys(FIGURES)
    elif values.dtype == bool or (values.dtype.kind == "u" and values.itemsize <= 2):
        figures = _histogram_figures(np.bincount(values.view(np.uint8) if values.dtype == bool
                                                 else values), values.size)  # fmt: skip
    else:
        figures = {
            "mean": float(values.mean(dtype=np.float64)),
            "std": float(values.std(dtype=np.float64)),
            "min": float(values.min()), "max": float(values.max()),
            "median": _median(values),
        }  # fmt: skip
    return {"count": int(values.size), "area_px": area,
            "area_mm2": area * down * across if spacing is not None else None, **figures}


def _median(values: np.ndarray) -> float:
    """``np.median(values.astype(float64))``, reordering ``values`` (a copy) in place:
    in their own dtype, the middle values are the same and partition faster."""
    if values.dtype.kind == "f" and np.isnan(values).any():
        return math.nan
    middle = values.size // 2
    values.partition(middle)
    upper = float(values[middle])
    return upper if values.size % 2 else (float(values[:middle].max()) + upper) / 2


def _histogram_figures(counts: np.ndarray, total: int) -> dict:
    """The :data:`FIGURES` of integer values from their histogram (``counts[v]`` values
    equal ``v``): one pass over the pixels instead of a sort for the median. The mean
    is exact, as NumPy's on float64 (integer sums below 2**53 are)."""
    levels = np.flatnonzero(counts)
    tally = counts[levels]
    mean = float(np.dot(levels, tally)) / total
    variance = float(np.dot(tally, (levels - mean) ** 2)) / total
    ranks = np.cumsum(tally)
    middle = total // 2  # the value at 0-based rank k is the first level whose cumsum > k
    upper = float(levels[np.searchsorted(ranks, middle, side="right")])
    if total % 2:
        median = upper
    else:
        median = (float(levels[np.searchsorted(ranks, middle - 1, side="right")]) + upper) / 2
    return {"mean": mean, "std": math.sqrt(variance), "min": float(levels[0]),
            "max": float(levels[-1]), "median": median}


def _inside_ellipse(corners: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Pixel centres strictly inside the ellipse inscribed in the box ``corners``."""
    centre = corners.mean(axis=0)
    first, second = corners[1] - corners[0], corners[3] - corners[0]
    half_first, half_second = np.hypot(*first) / 2, np.hypot(*second) / 2
    if half_first == 0 or half_second == 0:
        return np.zeros((len(rows), len(cols)), dtype=bool)
    unit_first, unit_second = first / (2 * half_first), second / (2 * half_second)
    offset_r, offset_c = rows[:, None] - centre[0], cols[None, :] - centre[1]
    along_first = offset_r * unit_first[0] + offset_c * unit_first[1]
    along_second = offset_r * unit_second[0] + offset_c * unit_second[1]
    return (along_first / half_first) ** 2 + (along_second / half_second) ** 2 < 1


def _inside_polygon(points: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Pixel centres inside or on the polygon (even-odd rule), as ``skimage.draw.polygon``.

    Two scan-line fills, one with each edge's rows half-open at the top and its
    columns at the left, one with both at the bottom and right, together hold the
    centres on the outline too; the vertices at pixel centres are added.
    """
    inside = _scan_fill(points, rows, cols, closed_high=False)
    inside |= _scan_fill(points, rows, cols, closed_high=True)
    on_centres = points[(points == np.round(points)).all(axis=1)].astype(int)
    on_centres -= (int(rows[0]), int(cols[0]))
    keep = ((on_centres >= 0) & (on_centres < inside.shape)).all(axis=1)
    inside[on_centres[keep, 0], on_centres[keep, 1]] = True
    return inside


def _scan_fill(points, rows, cols, closed_high: bool) -> np.ndarray:
    """One even-odd scan-line fill: an edge counts for the rows in ``[y0, y1)``
    (``(y0, y1]`` with ``closed_high``), a row's centres fill from each entering
    crossing to the next, the crossing's own column included at one end."""
    start, end = points, np.roll(points, -1, axis=0)
    low, high = np.minimum(start[:, 0], end[:, 0]), np.maximum(start[:, 0], end[:, 0])
    row = rows[:, None]
    spans = (row > low) & (row <= high) if closed_high else (row >= low) & (row < high)
    with np.errstate(divide="ignore", invalid="ignore"):
        # skimage's order of operations, so that crossings at centres agree
        crossing = (end[:, 1] - start[:, 1]) * (row - start[:, 0]) / (end[:, 0] - start[:, 0])
        crossing += start[:, 1]
    crossing = np.where(spans, crossing, np.inf)
    crossing.sort(axis=1)
    width = len(cols)
    change = np.zeros((len(rows), width + 1), dtype=np.int32)
    for pair in range(0, crossing.shape[1] - 1, 2):
        enter, leave = crossing[:, pair], crossing[:, pair + 1]
        valid = np.flatnonzero(np.isfinite(leave))
        if closed_high:
            first, last = np.floor(enter[valid] - cols[0]) + 1, np.floor(leave[valid] - cols[0]) + 1
        else:
            first, last = np.ceil(enter[valid] - cols[0]), np.ceil(leave[valid] - cols[0])
        np.add.at(change, (valid, np.clip(first, 0, width).astype(int)), 1)
        np.add.at(change, (valid, np.clip(last, 0, width).astype(int)), -1)
    return np.cumsum(change[:, :width], axis=1) > 0


def roi_statistics(
    image, shapes_data: Sequence, shape_types: Sequence[str], spacing=None
) -> list[dict]:
    """Statistics of each region of a napari Shapes layer on one frame or a stack.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
    shapes_data : sequence of (V, 2) or (V, 3) arrays
        napari's vertices: (row, column), or (frame, row, column) for a shape in
        one frame's plane. A 2D shape on a stack is measured over every frame.
    shape_types : sequence of str
        ``rectangle``, ``ellipse`` or ``polygon`` for each shape (lines and paths
        have no area and are left out).
    spacing : (down, across) in mm, optional

    Returns
    -------
    list of dict
        Per region: ``index`` (its place in the layer), ``shape_type``, ``frame``
        (or None for the stack), then :func:`region_statistics`: ``count`` (the
        pixels measured, over every frame for the stack), ``area_px`` (the region's
        pixels in a frame), ``area_mm2`` (None without spacing), ``mean``, ``std``,
        ``min``, ``max``, ``median`` (float64; None for a region with no pixel, or
        one in a frame the stack does not have).
    """
    data = np.asarray(image)
    if data.ndim not in (2, 3):
        raise ValueError(f"pass a frame (H, W) or a stack (N, H, W), got shape {data.shape}")
    _spacing(spacing)
    rows = []
    for index, (vertices, shape_type) in enumerate(zip(shapes_data, shape_types, strict=True)):
        if shape_type not in ROI_TYPES:
            continue
        points = np.asarray(vertices, dtype=float)
        frame = None
        if points.shape[1] == 3:
            frame = int(round(points[0, 0]))
            points = points[:, 1:]
        if data.ndim == 2:
            frame = None  # one frame: a shape's frame coordinate says nothing
        window = roi_window(points, shape_type, data.shape[-2:])
        if frame is None:
            measured = data
        elif 0 <= frame < data.shape[0]:
            measured = data[frame]
        else:
            measured = data[:0]  # in a frame the stack does not have: no pixel
        rows.append({"index": index, "shape_type": shape_type, "frame": frame,
                     **region_statistics(measured, window, spacing)})  # fmt: skip
    return rows
