"""The Frame details dock, opened from napari's menu on the series sample: it follows
the frame slider and its table jumps to a frame; checked against the entry file's
own text (csv module) and the data set's README."""

from __future__ import annotations

import csv
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

import napari_xray as nx

pytestmark = [pytest.mark.viewer, pytest.mark.realdata]

#: The data set's rows for the sample (shipped with the package; tests/io checks them).
RELEASED = Path(str(files("napari_xray") / "sample_data" / "Data_Entry_2017_patient11.csv"))


def _released_rows() -> list[list[str]]:
    with RELEASED.open(newline="") as handle:
        return list(csv.reader(handle))[1:]


def _open_panel(viewer):
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-xray", "Frame details")
    return widget


def _click_row(qtbot, panel, row: int) -> None:
    from qtpy.QtCore import Qt

    table = panel._table
    cell = table.visualItemRect(table.item(row, 1)).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=cell)


def test_the_panel_follows_the_slider_and_jumps_to_a_clicked_frame(
    make_napari_viewer, qtbot, xray_dir
):
    viewer = make_napari_viewer()
    panel = _open_panel(viewer)
    assert "no layer is selected" in panel._title.text()
    (series,) = viewer.open_sample("napari-xray", "series")
    viewer.layers.selection.active = series
    rows = _released_rows()

    # The table: one row per frame, as the entry file says.
    table = panel.table_rows()
    assert len(table) == 9
    for index, (cells, fields) in enumerate(zip(table, rows, strict=True)):
        assert cells[:4] == [str(index), fields[0], fields[1], fields[2]]
        assert cells[4] == f"{fields[4]} y, {fields[5]}" and cells[5] == fields[6]
        width, height, x, y = (float(v) for v in fields[7:11])
        assert cells[6] == f"{y * height / 1024:.3f} down × {x * width / 1024:.3f} across"

    # napari opens a stack at its middle frame.
    assert panel.frame == viewer.dims.current_step[0] == 4
    assert "Findings: No Finding" in panel.details and "Frame 4 of 0–8" in panel.details
    viewer.dims.set_current_step(0, 0)
    assert panel.frame == 0 and "Findings: Effusion" in panel.details
    viewer.dims.set_current_step(0, 5)
    assert panel.frame == 5
    assert "Findings: Infiltration" in panel.details
    assert "View: AP — this series mixes PA and AP views" in panel.details
    assert "Follow-up #5 of patient 11" in panel.details and "75 y, M" in panel.details
    assert panel._table.selectedItems()[0].row() == 5

    _click_row(qtbot, panel, 6)
    assert viewer.dims.current_step[0] == 6
    assert panel.frame == 6 and "Findings: Atelectasis" in panel.details
    np.testing.assert_array_equal(series._slice.image.view, series.data[6])

    # A result of the series shows the series' frames; a plain layer says what to open.
    result = nx.add_filter(viewer, series, "log")
    viewer.layers.selection.active = result
    assert panel.layer is series and "Findings: Atelectasis" in panel.details
    plain = viewer.add_image(np.zeros((4, 4), np.uint8), name="plain")
    viewer.layers.selection.active = plain
    assert panel.layer is None and "'plain' has none" in panel._title.text()
    assert panel.table_rows() == []


def test_one_frame_with_an_implausible_age_is_shown_as_it_is(make_napari_viewer, tmp_path,
                                                             xray_dir):
    text = RELEASED.read_text().replace("00000011_001.png,No Finding,1,11,74,",
                                        "00000011_001.png,No Finding,1,11,414,")
    (tmp_path / "Data_Entry_2017.csv").write_text(text)
    (tmp_path / "00000011_001.png").symlink_to(xray_dir / "00000011_001.png")
    viewer = make_napari_viewer()
    panel = _open_panel(viewer)
    (layer,) = viewer.open(str(tmp_path / "00000011_001.png"), plugin="napari-xray")
    viewer.layers.selection.active = layer
    assert panel.frame == 0 and panel.details.startswith("One frame")
    assert "414 y (implausible, as in the entry file), M" in panel.details
    assert "Pixel: 0.336 mm down × 0.410 mm across (derived from the entry file" in panel.details


def test_a_layer_with_frames_of_its_own_kind_is_not_taken_for_chestxray8(make_napari_viewer):
    viewer = make_napari_viewer()
    panel = _open_panel(viewer)
    other = viewer.add_image(np.zeros((2, 4, 4), np.uint8), name="other",
                             metadata={"frames": [{"t": 0}, {"t": 1}]})
    viewer.layers.selection.active = other
    assert panel.layer is None and "'other' has none" in panel._title.text()


def test_add_boxes_finds_the_box_file_or_asks_for_it(make_napari_viewer, qtbot, monkeypatch,
                                                     tmp_path, xray_dir):
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFileDialog

    viewer = make_napari_viewer()
    panel = _open_panel(viewer)
    (series,) = viewer.open_sample("napari-xray", "series")
    viewer.layers.selection.active = series
    box_file = tmp_path / "BBox_List_2017.csv"
    box_file.write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
                        "00000011_006.png,Atelectasis,225.1,547.0,86.8,79.2,,,\n")
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (asked.append(a) or str(box_file), "*.csv"))
    button = panel._boxes_button
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert asked, "no box file beside the sample's frames: the dock asks for one"
    boxes = viewer.layers[-1]
    assert boxes._type_string == "shapes" and list(boxes.features["finding"]) == ["Atelectasis"]
    assert set(boxes.data[0][:, 0]) == {6}
    assert panel.status == f"Added 1 box(es) as '{boxes.name}'."

    box_file.write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
                        "00000099_000.png,Mass,1,2,3,4,,,\n")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert "no box for the 9 frame(s)" in panel.status  # a message, napari carries on
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("", ""))
    count = len(viewer.layers)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # cancelled: nothing happens
    assert len(viewer.layers) == count
