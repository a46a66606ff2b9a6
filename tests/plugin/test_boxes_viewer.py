"""ChestX-ray8's boxes on the frames in a real viewer: read with the images through
npe2, or added from the console; placed where the box file's own numbers say."""

from __future__ import annotations

import csv
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

import napari_xray as nx
from napari_xray.errors import XrayError

pytestmark = [pytest.mark.viewer, pytest.mark.realdata]

#: The data set's rows for the sample (shipped with the package; tests/io checks them).
RELEASED = Path(str(files("napari_xray") / "sample_data" / "Data_Entry_2017_patient11.csv"))
NAMES = [f"00000011_{i:03d}.png" for i in range(9)]
BOX_ROWS = [
    "00000011_000.png,Effusion,100.5,200.25,300.75,150.125,,,",
    "00000011_005.png,Infiltrate,614.4,390.7,126.2,196.3,,,",
    "00000011_006.png,Atelectasis,225.084745762712,547.019216763771,86.7796610169491,"
    "79.1864406779661,,,",
    "00000011_006.png,Effusion,20,30,40,50,,,",
    "00013118_008.png,Nodule,10,10,20,20,,,",  # another patient: not on these frames
]


def _folder(tmp_path: Path, xray_dir: Path, names=NAMES, boxes=True) -> Path:
    folder = tmp_path / "patient11"
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(xray_dir / name)
    (folder / "Data_Entry_2017.csv").write_bytes(RELEASED.read_bytes())
    if boxes:
        (folder / "BBox_List_2017.csv").write_text(
            "Image Index,Finding Label,Bbox [x,y,w,h],,,\n" + "\n".join(BOX_ROWS) + "\n")
    return folder


def _csv_boxes(names) -> list[tuple[int, float, float, float, float]]:
    """(frame, x, y, w, h) of every box row on ``names``, straight from the CSV text."""
    rows = list(csv.reader(BOX_ROWS))
    return [(names.index(r[0]), *(float(v) for v in r[2:6])) for r in rows if r[0] in names]


def _assert_rectangles_match(layer, expected, stacked=True):
    assert list(layer.shape_type) == ["rectangle"] * len(expected)
    for vertices, (frame, x, y, w, h) in zip(layer.data, expected, strict=True):
        if stacked:
            assert set(vertices[:, 0]) == {frame}  # in its frame's plane only
            vertices = vertices[:, 1:]
        # napari's pixel centres are whole numbers: the image's corner is at -0.5.
        np.testing.assert_allclose(vertices.min(axis=0), [y - 0.5, x - 0.5])
        np.testing.assert_allclose(vertices.max(axis=0), [y + h - 0.5, x + w - 0.5])


def test_opening_a_folder_with_a_box_file_adds_its_boxes(make_napari_viewer, tmp_path, xray_dir):
    viewer = make_napari_viewer()
    layers = viewer.open(str(_folder(tmp_path, xray_dir)), plugin="napari-xray")
    image, boxes = layers
    assert image._type_string == "image" and boxes._type_string == "shapes"
    assert boxes.name == f"boxes ({image.name})"
    _assert_rectangles_match(boxes, _csv_boxes(NAMES))
    findings = list(boxes.features["finding"])
    assert findings == ["Effusion", "Infiltration", "Atelectasis", "Effusion"]
    colors = [tuple(c) for c in boxes.edge_color]
    assert colors[0] == colors[3] and len({colors[0], colors[1], colors[2]}) == 3
    np.testing.assert_allclose(boxes.scale, image.scale)
    assert boxes.text.values.tolist() == findings


def test_boxes_follow_a_layer_in_millimetres_and_come_from_the_console(
    make_napari_viewer, tmp_path, xray_dir
):
    names = ["00000011_001.png", "00000011_003.png", "00000011_004.png", "00000011_005.png"]
    folder = _folder(tmp_path, xray_dir, names, boxes=False)
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(folder), plugin="napari-xray")  # no box file: no boxes layer
    assert [str(u) for u in image.units] == ["pixel", "millimeter", "millimeter"]

    with pytest.raises(XrayError, match="no BBox_List_2017.csv beside the files"):
        nx.add_boxes(viewer, image)
    box_file = tmp_path / "BBox_List_2017.csv"
    box_file.write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\n" + "\n".join(BOX_ROWS))
    boxes = nx.add_boxes(viewer, image, box_file)
    _assert_rectangles_match(boxes, _csv_boxes(names))
    # On the image in world coordinates (mm): the same scale, corner for corner.
    corner = boxes.data[0][0]
    np.testing.assert_allclose(boxes.data_to_world(corner), image.data_to_world(corner))
    assert [str(u) for u in boxes.units] == [str(u) for u in image.units]

    other = viewer.add_image(np.zeros((5, 5), np.uint8), metadata={"file_names": ["x.png"]})
    with pytest.raises(XrayError, match="no box for the 1 frame"):
        nx.add_boxes(viewer, other, box_file)


def test_a_broken_box_file_never_stops_the_images(make_napari_viewer, tmp_path, xray_dir):
    from napari.utils.notifications import notification_manager

    folder = _folder(tmp_path, xray_dir, NAMES[:2], boxes=False)
    box_file = folder / "BBox_List_2017.csv"
    box_file.write_text("not,a,box,file\n")
    viewer = make_napari_viewer()
    before = len(notification_manager.records)
    layers = viewer.open(str(folder), plugin="napari-xray")
    assert [layer._type_string for layer in layers] == ["image"]
    assert layers[0].data.shape == (2, 1024, 1024)
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("opened the images without their boxes" in m and str(box_file) in m
               for m in messages), messages


def test_the_data_sets_own_layout_finds_rows_and_boxes_above_the_images(
    make_napari_viewer, tmp_path, xray_dir
):
    """Released: the CSV files at the top, the PNGs in images_001/images/."""
    root = tmp_path / "ChestX-ray8"
    images = root / "images_001" / "images"
    images.mkdir(parents=True)
    for name in NAMES[:3]:
        (images / name).symlink_to(xray_dir / name)
    (root / "Data_Entry_2017_v2020.csv").write_bytes(RELEASED.read_bytes())
    (root / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n" + "\n".join(BOX_ROWS) + "\n")
    viewer = make_napari_viewer()
    image, boxes = viewer.open(str(root), plugin="napari-xray")
    assert [f["findings"] for f in image.metadata["frames"]] == [["Effusion"], [], []]
    _assert_rectangles_match(boxes, _csv_boxes(NAMES[:3]))
    (single, single_boxes) = viewer.open(str(images / NAMES[0]), plugin="napari-xray")
    assert single.metadata["frames"][0]["findings"] == ["Effusion"]  # two levels up
    _assert_rectangles_match(single_boxes, _csv_boxes(NAMES[:1]), stacked=False)


def test_boxes_on_frames_resized_again_are_scaled_with_them(make_napari_viewer, tmp_path,
                                                            xray_dir):
    from PIL import Image

    folder = tmp_path / "half"
    folder.mkdir()
    for name in NAMES[:1]:
        Image.open(xray_dir / name).resize((512, 512)).save(folder / name)
    (folder / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n" + BOX_ROWS[0] + "\n")
    viewer = make_napari_viewer()
    image, boxes = viewer.open(str(folder), plugin="napari-xray")
    (_, x, y, w, h), = _csv_boxes(NAMES[:1])
    vertices = boxes.data[0][:, 1:]
    np.testing.assert_allclose(vertices.min(axis=0), [y / 2 - 0.5, x / 2 - 0.5])
    np.testing.assert_allclose(vertices.max(axis=0), [(y + h) / 2 - 0.5, (x + w) / 2 - 0.5])
