"""ChestX-ray8's bounding boxes on the frames: a Shapes layer of rectangles, each in
its frame's plane, labelled with its finding and coloured by it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_xray.errors import XrayError
from napari_xray.io.chestxray8 import (
    BOX_IMAGE_SHAPE,
    box_rectangles,
    find_box_file,
    read_boxes,
)
from napari_xray.plugin.layers import unwrap

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = ["FINDING_COLORS", "add_boxes", "boxes_layer_data", "metadata_folders"]

#: Edge colour of each finding the box file names; bright, so they read on gray.
FINDING_COLORS = {
    "Atelectasis": "#ffd700",
    "Cardiomegaly": "#ff4500",
    "Effusion": "#00bfff",
    "Infiltration": "#7cfc00",
    "Mass": "#ff00ff",
    "Nodule": "#00ffff",
    "Pneumonia": "#ff8c00",
    "Pneumothorax": "#ff1493",
}
_OTHER_COLOR = "#ffffff"

LayerDataTuple = tuple  # (data, kwargs, layer_type)


def metadata_folders(metadata: dict) -> list[Path]:
    """Where a layer's ChestX-ray8 files are looked for: beside its entry file, if it
    has one, then beside its first file."""
    folders = []
    entry_file = (metadata.get("chestxray8") or {}).get("entry_file")
    if entry_file:
        folders.append(Path(entry_file).parent)
    sources = metadata.get("source_paths") or []
    if sources:
        folders.append(Path(sources[0]).parent)
    return folders


def boxes_layer_data(
    boxes: list[dict],
    file_names: list[str],
    ndim: int,
    name: str,
    placement: dict[str, Any],
    frame_shape=None,
) -> LayerDataTuple | None:
    """The Shapes layer of the ``boxes`` that fall on the frames ``file_names``, or None.

    Parameters
    ----------
    boxes
        Rows of :func:`napari_xray.read_boxes`.
    file_names
        The image layer's file names, one per frame (its ``metadata["file_names"]``).
    ndim
        The image layer's dimensions: 3 for a stack (the rectangles lie in their
        frames' planes), 2 for one frame.
    name
        The image layer's name; the boxes are called ``"boxes (<name>)"``.
    placement
        ``scale``, ``translate`` and ``units`` of the image layer, if any, so the
        boxes sit on it.
    frame_shape
        The frames' (rows, columns) when they are not the data set's 1024 × 1024.
    """
    rectangles = box_rectangles(boxes, file_names, stacked=ndim == 3,
                                frame_shape=tuple(frame_shape or BOX_IMAGE_SHAPE))
    if not rectangles:
        return None
    findings = [r["finding"] for r in rectangles]
    kwargs = {
        "name": f"boxes ({name})",
        "shape_type": "rectangle",
        "edge_color": [FINDING_COLORS.get(f, _OTHER_COLOR) for f in findings],
        "face_color": "transparent",
        "edge_width": 3,
        "features": {
            "finding": findings,
            "image": [r["image"] for r in rectangles],
            "frame": [r["frame"] for r in rectangles],
        },
        "text": {"string": "{finding}", "anchor": "upper_left", "color": "white", "size": 10},
        "metadata": {"source": "ChestX-ray8 box file", "image_layer": name},
        **{key: value for key, value in placement.items() if value is not None},
    }
    data = [np.asarray(r["vertices"], dtype=np.float64) for r in rectangles]
    return (data, kwargs, "shapes")


def add_boxes(
    viewer: napari.Viewer,
    layer: Layer | None = None,
    boxes: list[dict] | str | os.PathLike | None = None,
) -> Layer:
    """Add the ChestX-ray8 boxes of ``layer``'s frames to ``viewer`` as a Shapes layer.

    Parameters
    ----------
    viewer
        The napari viewer.
    layer
        An image layer read from ChestX-ray8 PNGs (it has ``metadata["file_names"]``);
        default: the selected layer.
    boxes
        Rows of :func:`napari_xray.read_boxes`, or the path of a box file
        (``BBox_List_2017.csv``); default: the box file beside the layer's files or
        in ``$NAPARI_XRAY_CHESTXRAY8_DIR``.

    Returns
    -------
    napari.layers.Shapes
        The new layer, one rectangle per box, placed on ``layer``.

    Raises
    ------
    XrayError
        No layer, no box file to be found, or no box for any of the layer's frames.
    """
    viewer = unwrap(viewer)
    layer = unwrap(layer) if layer is not None else viewer.layers.selection.active
    if layer is None or "file_names" not in getattr(layer, "metadata", {}):
        raise XrayError(
            "select an image layer read from ChestX-ray8 PNGs (a folder, files or the "
            "series sample) to add its boxes"
        )
    file_names = list(layer.metadata["file_names"])
    if boxes is None:
        found = find_box_file(*metadata_folders(layer.metadata))
        if found is None:
            raise XrayError(
                f"no BBox_List_2017.csv beside the files of '{layer.name}' or in "
                "$NAPARI_XRAY_CHESTXRAY8_DIR; pass the box file's path"
            )
        boxes = found
    if not isinstance(boxes, list):
        boxes = read_boxes(boxes)
    placement = {"scale": tuple(layer.scale), "translate": tuple(layer.translate),
                 "units": tuple(str(unit) for unit in layer.units)}  # fmt: skip
    layer_data = boxes_layer_data(boxes, file_names, layer.ndim, layer.name, placement,
                                  frame_shape=layer.data.shape[-2:])
    if layer_data is None:
        raise XrayError(
            f"the box file has no box for the {len(file_names)} frame(s) of '{layer.name}' "
            f"({file_names[0]} …); ChestX-ray8 has boxes for under a thousand images"
        )
    data, kwargs, _ = layer_data
    return viewer.add_shapes(data, **kwargs)
