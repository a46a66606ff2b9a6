"""What the measurement docks measure: an input image and the napari-xray results made
from it, the shapes of a Shapes layer in the image's pixel coordinates, and the pixel
size of the frame on screen.

A shape measures the frame it is shown on: a shape of a 2D Shapes layer is shown
on every frame and measures the frame on screen; a shape drawn in one frame's plane
of a stack (napari's 3D Shapes layer) measures that frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from napari_xray.plugin.layers import METADATA_KEY, unwrap

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = [
    "PlacedShape",
    "frame_spacing",
    "input_layer_of",
    "input_of",
    "placed_shapes",
    "result_entry",
    "results_of",
    "shapes_layers",
]

#: The conversion between two layers is rounded to this many decimals, so that a
#: shape on an image of the same transform keeps its exact vertices (s · (1/s) ≠ 1).
_DECIMALS = 12


@dataclass(frozen=True)
class PlacedShape:
    """One shape of a Shapes layer, placed on an image.

    Attributes
    ----------
    index : int
        Its place in the Shapes layer.
    shape_type : str
        napari's type: ``line``, ``path``, ``rectangle``, ``ellipse``, ``polygon``.
    vertices : ndarray (V, 2)
        (row, column) in the image's pixel coordinates.
    frame : int or None
        The stack frame whose plane it was drawn in, or None for a 2D shape (shown on
        every frame).
    """

    index: int
    shape_type: str
    vertices: np.ndarray
    frame: int | None


def result_entry(layer) -> dict | None:
    """The ``napari_xray`` metadata entry of a napari-xray result, else None."""
    metadata = getattr(layer, "metadata", None)
    entry = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return entry if isinstance(entry, dict) and "operation" in entry else None


def input_layer_of(viewer: napari.Viewer | None, entry: dict) -> Layer | None:
    """The layer the result ``entry`` was computed from, if it is still in ``viewer``: by
    napari's unique id, or by name for entries that record none."""
    if viewer is None:
        return None
    wanted = entry.get("input_layer_id")
    for candidate in unwrap(viewer).layers:
        candidate = unwrap(candidate)
        if wanted:
            if str(getattr(candidate, "unique_id", "")) == wanted:
                return candidate
        elif candidate.name == entry.get("input_layer"):
            return candidate
    return None


def input_of(viewer: napari.Viewer, layer: Layer | None) -> Layer | None:
    """The layer a napari-xray result was computed from (still in ``viewer``), else ``layer``."""
    entry = result_entry(layer)
    if entry is not None:
        source = input_layer_of(viewer, entry)
        if source is not None:
            return source
    return layer


def results_of(viewer: napari.Viewer, layer: Layer) -> list[Layer]:
    """The napari-xray results of ``layer`` in ``viewer`` (Compare all's too), in layer
    list order, of its shape (not, e.g., a projection napari made of one of them)."""
    from napari.layers import Image, Labels

    results = []
    for candidate in unwrap(viewer).layers:
        candidate = unwrap(candidate)
        entry = result_entry(candidate)
        if (candidate is not layer and entry is not None
                and input_layer_of(viewer, entry) is layer
                and isinstance(candidate, (Image, Labels))
                and np.shape(candidate.data) == np.shape(layer.data)):  # fmt: skip
            results.append(candidate)
    return results


def shapes_layers(viewer: napari.Viewer) -> list[Layer]:
    """The viewer's Shapes layers, in layer list order."""
    from napari.layers import Shapes

    return [unwrap(layer) for layer in unwrap(viewer).layers if isinstance(layer, Shapes)]


def _affine_between(source: Layer, target: Layer) -> tuple[np.ndarray, np.ndarray]:
    """``(matrix, offset)`` taking ``source``'s data coordinates to ``target``'s, through
    the world, from napari's public conversions of the origin and the unit points."""

    def convert(point) -> np.ndarray:
        return np.asarray(target.world_to_data(source.data_to_world(point)), dtype=float)

    origin = convert(np.zeros(source.ndim))
    unit = np.eye(source.ndim)
    matrix = np.column_stack([convert(unit[axis]) - origin for axis in range(source.ndim)])
    return np.round(matrix, _DECIMALS), np.round(origin, _DECIMALS)


def placed_shapes(shapes: Layer, image: Layer) -> list[PlacedShape]:
    """Every shape of ``shapes`` in ``image``'s pixel coordinates (see the module)."""
    if not len(shapes.data):
        return []
    matrix, offset = _affine_between(shapes, image)
    stacked = image.ndim > 2 and shapes.ndim > 2
    placed = []
    for index, (vertices, shape_type) in enumerate(
        zip(shapes.data, shapes.shape_type, strict=True)
    ):
        points = np.asarray(vertices, dtype=float) @ matrix.T + offset
        frame = None
        if stacked:
            frame = int(np.round(points[0, -3]))
        placed.append(PlacedShape(index, str(shape_type), points[:, -2:], frame))
    return placed


def frame_spacing(layer: Layer, frame: int | None) -> tuple[float, float] | None:
    """The pixel size (down, across) in mm of ``layer``'s frame ``frame``, or None.

    A ChestX-ray8 frame's own size (``metadata["frames"][frame]["pixel_size_mm"]``:
    its pixels are not square) comes first, then a size all frames share
    (``metadata["pixel_spacing"]``, e.g. a DICOM header's).
    """
    metadata = layer.metadata if isinstance(layer.metadata, dict) else {}
    frames = metadata.get("frames")
    if isinstance(frames, list) and frames:
        position = 0 if frame is None else frame
        entry = frames[position] if 0 <= position < len(frames) else None
        size = entry.get("pixel_size_mm") if isinstance(entry, dict) else None
        if size is not None:
            return float(size[0]), float(size[1])
    shared = metadata.get("pixel_spacing")
    if shared is not None and len(shared) == 2:
        return float(shared[0]), float(shared[1])
    return None
