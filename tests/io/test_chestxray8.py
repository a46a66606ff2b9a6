"""ChestX-ray8's entry and box files, every variant in circulation, against pandas
and the formats' own definition (../shared/chestxray8/README.md)."""

from __future__ import annotations

import csv
import math
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest

import napari_xray as nx
from napari_xray.errors import XrayReadError
from napari_xray.io.chestxray8 import MetadataWarning, png_pixel_size
from napari_xray.io.read import read_xray_with_metadata

SHIPPED = Path(str(files("napari_xray") / "sample_data" / "Data_Entry_2017_patient11.csv"))
#: The rows as the data set released them (the project's shared copy).
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "chestxray8" / \
    "Data_Entry_2017_patient11.csv"
#: What the other tests read: the shipped copy, which the first test shows is the released one.
RELEASED = SHIPPED
ENTRY_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
                "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],")
BOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"


def test_the_shipped_rows_are_the_released_ones():
    assert SHIPPED.read_bytes() == SHARED.read_bytes()


def test_the_sample_rows_say_what_the_data_set_says():
    entries = nx.read_entries(SHIPPED)
    assert [e["image"] for e in entries] == [f"00000011_{i:03d}.png" for i in range(9)]
    findings = {e["image"][-7:-4]: e["findings"] for e in entries if e["findings"]}
    assert findings == {"000": ["Effusion"], "005": ["Infiltration"], "006": ["Atelectasis"],
                        "007": ["Infiltration"]}
    assert [e["view"] for e in entries] == ["PA"] * 5 + ["AP"] + ["PA"] * 3
    assert [e["follow_up"] for e in entries] == list(range(9))
    assert {e["patient_id"] for e in entries} == {11} and {e["sex"] for e in entries} == {"M"}
    assert [e["age"] for e in entries] == [74, 74] + [75] * 7
    assert [e["line"] for e in entries] == list(range(2, 11))
    # The data set's README: 0.168 × 2500 / 1024 ≈ 0.410 mm across, 0.168 × 2048 / 1024 down.
    down, across = png_pixel_size(entries[1])
    assert round(across, 3) == 0.410 and down == pytest.approx(0.336, abs=1e-12)


def _pandas_rows(path: Path) -> list[list]:
    """The file as pandas reads it, by position: an independent parse."""
    table = pd.read_csv(path, header=None, skiprows=1, usecols=range(11), dtype=str,
                        keep_default_na=False)
    return table.to_numpy().tolist()


def _as_fields(entry: dict) -> list[str]:
    findings = "|".join(entry["findings"]) or "No Finding"
    width, height = entry["original_size"]
    x, y = entry["original_spacing"]
    return [entry["image"], findings, entry["follow_up"], entry["patient_id"], entry["age"],
            entry["sex"], entry["view"], width, height, x, y]


def _variants(tmp_path: Path) -> dict[str, Path]:
    text = RELEASED.read_text()
    lines = text.splitlines()
    variants = {
        "released": text,
        "Patient Sex": text.replace("Patient Gender", "Patient Sex"),
        "no trailing comma": "\n".join(line.rstrip(",") for line in lines) + "\n",
        "CRLF": "\r\n".join(lines) + "\r\n",
        "byte-order mark": "\ufeff" + text,
        "no final newline": text.rstrip("\n"),
    }
    paths = {}
    for name, content in variants.items():
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        paths[name] = folder / ("Data_Entry_2017_v2020.csv" if name == "Patient Sex"
                                else "Data_Entry_2017.csv")
        paths[name].write_bytes(content.encode("utf-8"))
    return paths


def test_every_variant_in_circulation_reads_alike_and_as_pandas_reads_it(tmp_path):
    for name, path in _variants(tmp_path).items():
        problems = []
        entries = nx.read_entries(path, problems=problems)
        assert problems == [], name
        expected = _pandas_rows(RELEASED)
        assert len(entries) == len(expected) == 9, name
        for entry, row in zip(entries, expected, strict=True):
            fields = _as_fields(entry)
            assert [str(f) for f in fields[:9]] == row[:9], name
            assert fields[9:] == [float(v) for v in row[9:]], name


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_malformed_rows_are_reported_with_their_line_and_left_out(tmp_path):
    good = "00000001_000.png,Cardiomegaly|Emphysema,0,1,58,F,PA,2682,2749,0.143,0.143,"
    rows = [
        good,
        "00000001_001.png,Effusion,1,1,58,F,PA,2682,2749,0.143",  # 10 fields
        "00000001_002.png,Effusion,2,1,fifty,F,PA,2682,2749,0.143,0.143,",
        "00000001_003.png,Effusion,3,1,58,X,PA,2682,2749,0.143,0.143,",
        "00000001_004.png,Effusion,4,1,58,F,PA,2682,2749,-0.143,0.143,",
        "00000001_005.png,Effusion||Mass,5,1,58,F,PA,2682,2749,0.143,0.143,",
        "../00000001_006.png,Effusion,6,1,58,F,PA,2682,2749,0.143,0.143,",
        "00000001_007.png,Effusion,7,1,58,F,PA,0,2749,0.143,0.143,",
        "00000001_008.png,Effusion,8,1,58,F,PA,2682,2749,nan,0.143,",
        "",
        "00000001_009.png,No Finding,9,1,414,M,AP,2500,2048,0.168,0.168,",
        "00000001_010.png,Mass,10,1,058Y,f,ap,2500,2048,0.168,0.168,",
    ]
    path = _write(tmp_path / "Data_Entry_2017.csv", ENTRY_HEADER, rows)
    problems = []
    entries = nx.read_entries(path, problems=problems)
    assert [p["line"] for p in problems] == [3, 4, 5, 6, 7, 8, 9, 10]
    reasons = [p["reason"] for p in problems]
    assert reasons[0] == "10 fields, expected 11"
    assert "'fifty' is not a whole number" in reasons[1]
    assert "sex 'X'" in reasons[2] and "'-0.143' is not positive" in reasons[3]
    assert "empty name" in reasons[4] and "not a file name" in reasons[5]
    assert "width is 0" in reasons[6] and "'nan' is not" in reasons[7]
    assert [e["line"] for e in entries] == [2, 12, 13]
    assert entries[0]["findings"] == ["Cardiomegaly", "Emphysema"]
    # An implausible age is shown as it is, flagged; a DICOM age string is read.
    assert entries[1]["age"] == 414 and entries[1]["age_plausible"] is False
    assert entries[1]["findings"] == []
    assert entries[2]["age"] == 58 and entries[2]["age_plausible"] is True
    assert (entries[2]["sex"], entries[2]["view"]) == ("F", "AP")

    with pytest.warns(MetadataWarning) as caught:
        assert len(nx.read_entries(path)) == 3
    message = str(caught[0].message)
    assert str(path) in message and "left out 8 malformed row(s)" in message
    assert "line 3: 10 fields" in message and "(and 3 more)" in message


def test_boxes_read_in_the_released_format(tmp_path):
    rows = [
        "00013118_008.png,Atelectasis,225.084745762712,547.019216763771,86.7796610169491,"
        "79.1864406779661,,,",
        "00014716_007.png,Infiltrate,614.4,390.7,126.2,196.3,,,",
        "00029817_009.png,Nodule,198.0,352.5,0,30.1,,,",  # no width
        "00029817_010.png,Mass,198.0,inf,40.2,30.1,,,",
        "00029817_011.png,Mass,12.5,20.25,40.5,30.125",  # without the trailing commas
    ]
    path = _write(tmp_path / "BBox_List_2017.csv", BOX_HEADER, rows)
    problems = []
    boxes = nx.read_boxes(path, problems=problems)
    assert [(p["line"], p["reason"]) for p in problems] == [
        (4, "w '0' is not positive"), (5, "y 'inf' is not finite")]
    assert [b["finding"] for b in boxes] == ["Atelectasis", "Infiltration", "Mass"]
    with path.open(newline="") as handle:
        released = list(csv.reader(handle))[1:]
    for box, line in zip(boxes, (2, 3, 6), strict=True):
        fields = released[line - 2]
        assert box["line"] == line and box["image"] == fields[0]
        assert [box[k] for k in ("x", "y", "width", "height")] == [float(v) for v in fields[2:6]]
        assert all(math.isfinite(box[k]) for k in ("x", "y", "width", "height"))


def test_files_of_the_wrong_kind_are_refused_by_name(tmp_path):
    boxes = _write(tmp_path / "BBox_List_2017.csv", BOX_HEADER,
                   ["00013118_008.png,Atelectasis,225.1,547.0,86.8,79.2,,,"])
    with pytest.raises(XrayReadError, match="header has 6 columns, not 11") as error:
        nx.read_entries(boxes)
    assert str(boxes) in str(error.value) and error.value.path == str(boxes)
    with pytest.raises(XrayReadError, match="header has 11 columns, not 6"):
        nx.read_boxes(RELEASED)
    notes = tmp_path / "notes.csv"
    notes.write_text("name,value\na,1\n")
    with pytest.raises(XrayReadError, match="not a header starting with 'Image Index'"):
        nx.read_entries(notes)
    binary = tmp_path / "Data_Entry_2017.csv"
    binary.write_bytes(b"Image Index,\xff\xfe\x00\x01" * 10)
    with pytest.raises(XrayReadError, match="is not a ChestX-ray8 entry file"):
        nx.read_entries(binary)
    missing = tmp_path / "gone" / "Data_Entry_2017.csv"
    with pytest.raises(XrayReadError, match="cannot read .*gone.*No such file"):
        nx.read_entries(missing)
    with pytest.raises(XrayReadError, match="pass a ChestX-ray8 entry file"):
        nx.read_entries(tmp_path)  # a folder


# --------------------------------------------------------------------------- reading PNGs


def _released_fields() -> dict[str, list[str]]:
    with RELEASED.open(newline="") as handle:
        return {row[0]: row for row in list(csv.reader(handle))[1:]}


def _pixel_size_from_the_csv(name: str) -> tuple[float, float]:
    """(down, across) in mm by the data set's README: spacing × original size / 1024."""
    fields = _released_fields()[name]
    width, height, spacing_x, spacing_y = (float(v) for v in fields[7:11])
    return spacing_y * height / 1024, spacing_x * width / 1024


def _frames_with_entries(tmp_path, xray_dir, names, entry_name="Data_Entry_2017.csv"):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(xray_dir / name)
    if entry_name:
        (folder / entry_name).write_bytes(RELEASED.read_bytes())
    return folder


@pytest.mark.realdata
def test_a_folder_with_its_entry_file_gives_each_frame_its_row(tmp_path, xray_dir):
    names = [f"00000011_{i:03d}.png" for i in range(9)]
    folder = _frames_with_entries(tmp_path, xray_dir, names)
    data, metadata = read_xray_with_metadata(folder)
    assert data.shape == (9, 1024, 1024) and metadata["file_names"] == names
    fields = _released_fields()
    for name, frame in zip(names, metadata["frames"], strict=True):
        labels = fields[name][1]
        assert frame["image"] == name
        assert frame["findings"] == ([] if labels == "No Finding" else labels.split("|"))
        assert frame["view"] == fields[name][6]
        assert frame["pixel_size_mm"] == pytest.approx(_pixel_size_from_the_csv(name))
    # Nine different original sizes: the layer stays in pixels, each frame keeps its own.
    assert metadata["pixel_spacing"] is None
    assert metadata["chestxray8"]["mixed_views"] is True
    assert metadata["chestxray8"]["frames_described"] == 9


@pytest.mark.realdata
def test_frames_of_one_pixel_size_give_the_layer_its_scale_in_mm(tmp_path, xray_dir):
    from napari_xray.plugin._reader import napari_get_reader

    names = ["00000011_001.png", "00000011_003.png", "00000011_004.png"]  # all 2500 × 2048
    folder = _frames_with_entries(tmp_path, xray_dir, names, "Data_Entry_2017_v2020.csv")
    ((data, kwargs, kind),) = napari_get_reader(str(folder))(str(folder))
    assert kind == "image" and data.shape == (3, 1024, 1024)
    assert kwargs["scale"] == pytest.approx((1.0, *_pixel_size_from_the_csv(names[0])))
    assert kwargs["units"] == ("pixel", "mm", "mm")
    assert "derived from the ChestX-ray8 entry file" in kwargs["metadata"]["pixel_spacing_source"]
    ((_, single, _),) = napari_get_reader(str(folder / names[0]))(str(folder / names[0]))
    assert single["scale"] == pytest.approx(_pixel_size_from_the_csv(names[0]))
    assert single["units"] == ("mm", "mm")


@pytest.mark.realdata
def test_the_entry_file_can_be_named_or_found_through_the_environment(
    tmp_path, xray_dir, monkeypatch
):
    names = ["00000011_000.png", "00000011_005.png"]
    folder = _frames_with_entries(tmp_path, xray_dir, names, entry_name=None)
    _, plain = read_xray_with_metadata(folder)
    assert "frames" not in plain and "chestxray8" not in plain

    _, named = read_xray_with_metadata(folder, metadata=RELEASED)
    assert [f["findings"] for f in named["frames"]] == [["Effusion"], ["Infiltration"]]

    monkeypatch.setenv("NAPARI_XRAY_CHESTXRAY8_DIR", str(RELEASED.parent))
    _, found = read_xray_with_metadata(folder)
    assert found["frames"] == named["frames"]
    assert found["chestxray8"]["entry_file"] == str(RELEASED)


@pytest.mark.realdata
def test_a_bad_entry_file_never_stops_the_images_from_opening(tmp_path, xray_dir):
    names = ["00000011_001.png"]
    folder = _frames_with_entries(tmp_path, xray_dir, names, entry_name=None)
    broken = folder / "Data_Entry_2017.csv"
    broken.write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\n")  # a box file's header
    data, metadata = read_xray_with_metadata(folder)
    assert data.shape == (1, 1024, 1024) and "frames" not in metadata
    assert str(broken) in metadata["chestxray8"]["error"]
    with pytest.raises(XrayReadError, match="header has 6 columns"):
        read_xray_with_metadata(folder, metadata=broken)
