"""The reader inside a real napari viewer (npe2 discovery, errors, scale)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_xray import read_xray
from napari_xray.errors import XrayReadError

pytestmark = pytest.mark.viewer

DICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
FRAME_NAMES = [f"00000011_{i:03d}.png" for i in range(9)]


def _causes(exc: BaseException):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_manifest_declares_the_reader():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    readers = [r for r in pm.iter_compatible_readers(["x.png"]) if r.plugin_name == "napari-xray"]
    assert readers, "napari-xray's reader is not discovered by npe2 (is the package installed?)"
    assert readers[0].accepts_directories
    assert [r for r in pm.iter_compatible_readers(["x.dcm"]) if r.plugin_name == "napari-xray"]


def test_open_folder_adds_one_stack_layer(make_napari_viewer, xray_dir, xray_stack):
    viewer = make_napari_viewer()
    layers = viewer.open(str(xray_dir), plugin="napari-xray")

    assert len(layers) == 1
    assert list(viewer.layers) == layers
    layer = layers[0]
    assert layer._type_string == "image"
    assert layer.data.shape == (9, 1024, 1024)
    assert layer.rgb is False
    np.testing.assert_array_equal(np.asarray(layer.data), xray_stack)
    assert layer.metadata["file_names"] == FRAME_NAMES
    assert layer.name == xray_dir.name
    assert viewer.dims.ndim == 3


def test_open_single_dicom_sets_scale_from_pixel_spacing(make_napari_viewer):
    path = DICOM_FILES / "CT_small.dcm"
    spacing = [float(v) for v in pydicom.dcmread(path).PixelSpacing]
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-xray")
    assert layer.data.shape == (128, 128)
    np.testing.assert_allclose(layer.scale, spacing)
    assert layer.metadata["modality"] == "CT"


def test_bad_file_raises_and_the_viewer_keeps_working(make_napari_viewer, tmp_path, xray_paths):
    data = xray_paths[1].read_bytes()
    bad = tmp_path / "00000011_001.png"
    bad.write_bytes(data[: len(data) // 2])
    viewer = make_napari_viewer()

    with pytest.raises(Exception) as excinfo:  # napari may wrap the reader's error
        viewer.open(str(bad), plugin="napari-xray")

    errors = list(_causes(excinfo.value))
    assert any(isinstance(e, XrayReadError) for e in errors), errors
    assert "truncated" in " ".join(str(e) for e in errors)
    assert len(viewer.layers) == 0

    (layer,) = viewer.open(str(xray_paths[0]), plugin="napari-xray")
    assert layer.data.shape == (1024, 1024)
    assert len(viewer.layers) == 1


def test_mixed_sizes_folder_raises_and_adds_nothing(make_napari_viewer, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "b.png")
    viewer = make_napari_viewer()

    with pytest.raises(Exception) as excinfo:
        viewer.open(str(tmp_path), plugin="napari-xray")

    assert any("b.png is 8×8" in str(e) for e in _causes(excinfo.value))
    assert len(viewer.layers) == 0
    viewer.add_image(np.zeros((4, 4)))  # still usable
    assert len(viewer.layers) == 1


def test_the_size_limit_applies_in_napari(make_napari_viewer, monkeypatch, xray_paths):
    """NAPARI_XRAY_MAX_PIXELS reaches napari's reader: a 1024² frame over a 1-megapixel limit."""
    monkeypatch.setenv("NAPARI_XRAY_MAX_PIXELS", "1000000")
    viewer = make_napari_viewer()

    with pytest.raises(Exception) as excinfo:
        viewer.open(str(xray_paths[0]), plugin="napari-xray")

    errors = list(_causes(excinfo.value))
    assert any(isinstance(e, XrayReadError) for e in errors), errors
    assert "NAPARI_XRAY_MAX_PIXELS" in " ".join(str(e) for e in errors)
    assert len(viewer.layers) == 0


DICOM_TREES = DICOM_FILES / "dicomdirtests"


def test_extensionless_dicom_in_a_folder_is_read(make_napari_viewer):
    folder = DICOM_TREES / "77654033" / "CR1"  # holds the one extension-less file 6154
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(folder), plugin="napari-xray")
    assert layer.data.shape == (1, 16, 16)
    assert layer.metadata["file_names"] == ["6154"] and layer.metadata["modality"] == "CR"
    np.testing.assert_array_equal(layer.data[0], read_xray(folder / "6154"))  # as on its own


def test_a_dicomdir_tree_of_sub_folders_is_read(make_napari_viewer):
    tree = DICOM_TREES / "98892003"  # MR1, MR2, MR700: series folders, no files of its own
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(tree), plugin="napari-xray")
    assert layer.data.shape == (len(files), 16, 16)
    assert sorted(layer.metadata["source_paths"]) == sorted(str(p) for p in files)
    assert layer.metadata["modality"] == "MR"
    for frame, source in zip(layer.data, layer.metadata["source_paths"], strict=True):
        np.testing.assert_array_equal(frame, read_xray(source))


def test_a_folder_with_one_bad_png_loads_the_rest_and_names_it(
    make_napari_viewer, tmp_path, xray_paths, xray_stack
):
    from napari.utils.notifications import notification_manager

    for path in xray_paths:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    bad = tmp_path / FRAME_NAMES[4]
    bad.write_bytes(bad.read_bytes()[:100_000])
    with pytest.raises(XrayReadError, match="00000011_004.png is truncated"):
        read_xray(tmp_path)  # the library itself still refuses

    viewer = make_napari_viewer()
    before = len(notification_manager.records)
    (layer,) = viewer.open(str(tmp_path), plugin="napari-xray")
    assert layer.data.shape == (8, 1024, 1024)
    np.testing.assert_array_equal(layer.data, np.delete(xray_stack, 4, axis=0))
    assert "00000011_004.png" not in layer.metadata["file_names"]
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("00000011_004.png" in m and "truncated" in m and "8 frames" in m for m in messages)
