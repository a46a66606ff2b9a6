"""The npe2 reader: X-ray files, folders and batch stores as napari LayerDataTuples.

:func:`napari_get_reader` answers "can napari-xray read this?" with cheap checks
only (it imports no image decoder, Dask, Zarr, OpenCV or SciPy); the readers it
returns do the work: :func:`read_xray_layers` for PNG/DICOM, and
:func:`open_store_layers` for a ``napari-xray batch`` store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from napari_xray.errors import XrayReadError
from napari_xray.io.paths import PathLike, as_path_list, holds_xray_files, path_kind
from napari_xray.io.store import is_xray_store, open_store

__all__ = ["napari_get_reader", "open_store_layers", "read_xray_layers"]

LayerDataTuple = tuple  # (data, kwargs, layer_type)


def napari_get_reader(path: PathLike | Sequence[PathLike]) -> Callable | None:
    """npe2 reader contribution: claim PNG/DICOM files, lists of them, folders and stores.

    Only cheap checks are made here (existence, extension, a folder listing, the
    first 132 bytes of extension-less files, a store's ``zarr.json``); nothing is
    decoded.

    Returns
    -------
    callable or None
        :func:`open_store_layers` for one napari-xray batch store (``STORE.zarr``
        or ``STORE.zarr/<filter>``); :func:`read_xray_layers` when every path is a
        ``.png``/``.dcm``/``.dicom`` file (or an extension-less DICOM file) or a
        folder holding at least one such file; ``None`` otherwise (wrong extension,
        missing path, a folder without images, another Zarr store, an empty list)
        so other readers may try. Never raises.
    """
    try:
        paths, _ = as_path_list(path)
        if not paths:
            return None
        if len(paths) == 1 and is_xray_store(paths[0]):
            return open_store_layers
        for p in paths:
            kind = path_kind(p)
            if kind is None or kind == "zarr":  # a Zarr store napari-xray did not write
                return None
            if kind == "folder" and not holds_xray_files(p):
                return None
    except Exception:  # never break napari's open dialog: decline, another reader may try
        return None
    return read_xray_layers


def read_xray_layers(path: PathLike | Sequence[PathLike]) -> list[LayerDataTuple]:
    """The napari reader: one image layer for a file, a folder or a list of files.

    Returns
    -------
    list of LayerDataTuple
        ``[(data, kwargs, "image")]``, followed by a ``"shapes"`` layer of the
        frames' ChestX-ray8 boxes when a ``BBox_List_2017.csv`` beside the PNGs
        (or in ``$NAPARI_XRAY_CHESTXRAY8_DIR``) has any. ``kwargs`` holds ``name``
        (file stem, folder name, or the common prefix of a list), ``metadata`` (see
        :func:`napari_xray.io.read.read_xray_with_metadata`), ``colormap="gray"``,
        ``rgb=False`` and, when one pixel spacing is known for all frames (DICOM's
        own, or derived from a ChestX-ray8 entry file), ``scale`` in mm (``1.0``
        along the stack axis) and ``units``; when the DICOM header names display
        windows, ``contrast_limits`` from its default (first) window.

    A folder or list with some unreadable files loads the others, and a napari
    notification names the files left out and why.

    Raises
    ------
    XrayReadError
        A single file cannot be read, or none of a folder's or list's files can
        (napari shows the message and keeps running).
    """
    from napari_xray.io.read import read_xray_with_metadata

    data, metadata = read_xray_with_metadata(path, skip_bad=True)
    skipped = metadata.pop("skipped", [])
    if skipped:
        _notify_skipped(skipped, loaded=len(metadata["file_names"]))
    kwargs: dict[str, Any] = {
        "name": metadata["name"],
        "metadata": metadata,
        "colormap": "gray",
        "rgb": False,
    }
    kwargs.update(spatial_calibration(data.ndim, metadata))
    if metadata.get("windows"):
        kwargs["contrast_limits"] = list(metadata["windows"][0]["limits"])
    layers = [(data, kwargs, "image")]
    if metadata["format"] == "png":
        boxes = _boxes_beside(metadata, data.shape, kwargs)
        if boxes is not None:
            layers.append(boxes)
    return layers


def _boxes_beside(metadata: dict, shape: tuple, image_kwargs: dict) -> LayerDataTuple | None:
    """The Shapes layer of a ChestX-ray8 box file beside the PNGs (or in
    ``$NAPARI_XRAY_CHESTXRAY8_DIR``) for these frames; None if there is none. A box
    file that cannot be read is a notification, never a failed open."""

    from napari_xray.io.chestxray8 import find_box_file, read_boxes
    from napari_xray.plugin.boxes import boxes_layer_data, metadata_folders

    box_file = find_box_file(*metadata_folders(metadata))
    if box_file is None:
        return None
    try:
        boxes = read_boxes(box_file, problems=[])
    except XrayReadError as error:
        from napari.utils.notifications import show_warning

        show_warning(f"napari-xray opened the images without their boxes: {error}")
        return None
    placement = {key: image_kwargs.get(key) for key in ("scale", "units")}
    return boxes_layer_data(boxes, metadata["file_names"], len(shape), metadata["name"],
                            placement, frame_shape=shape[-2:])


def spatial_calibration(ndim: int, metadata: dict) -> dict[str, Any]:
    """``scale`` and ``units`` (mm) for a layer whose metadata gives one pixel spacing.

    Empty when the frames have none, or differ (each frame then keeps its own in
    ``metadata["frames"]``): the layer stays in pixels.
    """
    spacing = metadata.get("pixel_spacing")
    if spacing is None:
        return {}
    return {
        "scale": (1.0,) * (ndim - 2) + tuple(float(v) for v in spacing),
        "units": ("pixel",) * (ndim - 2) + ("mm", "mm"),
    }


def _notify_skipped(skipped: list[dict[str, str]], *, loaded: int) -> None:
    """Tell the napari user which files were left out of the stack, and why."""
    from napari.utils.notifications import show_warning

    first = skipped[0]
    others = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
    show_warning(
        f"napari-xray loaded {loaded} frame{'s' if loaded != 1 else ''} and left out "
        f"{first['file_name']}{others}, which could not be read: {first['reason']}"
    )


def open_store_layers(path: PathLike | Sequence[PathLike]) -> list[LayerDataTuple]:
    """Lazy layers for a batch store: one per result array (or the one array named).

    Parameters
    ----------
    path
        ``STORE.zarr`` or ``STORE.zarr/<filter>`` (or a list holding one of them,
        as napari passes it).

    Returns
    -------
    list of LayerDataTuple
        ``(data, kwargs, layer_type)`` where ``data`` is the ``dask.array.Array``
        of :func:`napari_xray.io.store.open_store`. Boolean results (Canny edges,
        binary masks) are ``"labels"`` layers (viewed as uint8 0/1); the others
        are ``"image"`` layers with the result's colormap and contrast limits.
        ``kwargs["name"]`` is ``"<filter> (<store>)"``; ``kwargs["metadata"]`` holds
        ``store``, ``filter``, ``title``, ``params``, ``file_names``,
        ``source_paths`` and the ``report``, and, when the batch kept the inputs'
        ChestX-ray8 rows, ``frames`` and the rest of
        :func:`napari_xray.io.chestxray8.describe_frames` (then ``scale`` and
        ``units`` when the frames share one pixel size).

    Raises
    ------
    XrayReadError
        ``path`` is not a napari-xray batch store (or names an array it lacks).
    """
    paths, _ = as_path_list(path)  # napari may pass [path]
    if len(paths) != 1:
        raise XrayReadError(f"open one batch store at a time, not {len(paths)} paths")
    store = open_store(paths[0])
    shared = {
        "store": str(store.root),
        "file_names": store.file_names,
        "source_paths": store.source_paths,
        "report": store.report,
    }
    if store.chestxray8 is not None:
        from napari_xray.io.chestxray8 import describe_frames

        rows = store.chestxray8
        shared.update(describe_frames(rows["rows"], store.results[0].data.shape[-2:],
                                      rows["entry_file"], rows["malformed_rows"]))  # fmt: skip
    layers: list[LayerDataTuple] = []
    for result in store.results:
        metadata = {**shared, "filter": result.key, "title": result.title, "params": result.params}
        kwargs: dict[str, Any] = {"name": f"{result.key} ({store.name})", "metadata": metadata,
                                  **spatial_calibration(result.data.ndim, metadata)}
        if result.data.dtype == bool:
            layers.append((result.data.astype("uint8"), kwargs, "labels"))
            continue
        kwargs["colormap"] = result.colormap
        if result.contrast_limits is not None:
            kwargs["contrast_limits"] = list(result.contrast_limits)
        kwargs["rgb"] = False
        layers.append((result.data, kwargs, "image"))
    return layers
