"""No output of napari-xray holds a patient-identifying value of its DICOM input:
not the layer metadata, the GIF napari saves, compare's files or a batch store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from napari_xray.cli import main
from radiographs import IDENTIFYING_VALUES, write_radiograph

pytestmark = pytest.mark.viewer


@pytest.fixture
def identified_series(tmp_path) -> Path:
    folder = tmp_path / "identified"
    folder.mkdir()
    for number in range(3):
        write_radiograph(folder / f"image{number}.dcm", windows=[(2048, 4096, "FULL")],
                         spacing={"ImagerPixelSpacing": (0.15, 0.15)})
    return folder


def _assert_nothing_identifying(root: Path) -> None:
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        content = path.read_bytes()
        for keyword, value in IDENTIFYING_VALUES.items():
            assert value.encode() not in content, f"{keyword} in {path}"
            assert value.replace("^", " ").encode() not in content, f"{keyword} in {path}"


def test_the_viewer_and_its_gif_hold_no_identifying_value(make_napari_viewer, identified_series,
                                                          tmp_path):
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(identified_series), plugin="napari-xray")
    text = repr(layer.metadata)
    for value in IDENTIFYING_VALUES.values():
        assert value not in text
    assert "PatientName" in layer.metadata["identifying_attributes"]
    viewer.layers.selection.active = layer
    (gif,) = viewer.layers.save(str(tmp_path / "series.gif"), selected=True, plugin="napari-xray")
    _assert_nothing_identifying(Path(gif))


def test_compare_and_batch_outputs_hold_no_identifying_value(identified_series, tmp_path):
    out = tmp_path / "compared"
    assert main(["compare", str(identified_series), "--out", str(out), "--quiet"]) == 0
    _assert_nothing_identifying(out)
    store = tmp_path / "batch.zarr"
    result = subprocess.run(
        [sys.executable, "-m", "napari_xray.cli", "batch", str(identified_series), "--out",
         str(store), "--workers", "1", "--no-progress", "--filters", "fast"],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    _assert_nothing_identifying(store)
    for value in IDENTIFYING_VALUES.values():
        assert value not in result.stdout + result.stderr
