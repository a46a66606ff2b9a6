"""Reading DICOMDIR-style trees of sub-folders and folders with bad files (no viewer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from napari_xray.errors import XrayReadError
from napari_xray.io.paths import holds_xray_files, list_xray_files
from napari_xray.io.read import read_xray, read_xray_with_metadata

TREES = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"


def test_a_folder_of_series_folders_is_read_folder_by_folder():
    tree = TREES / "77654033"  # CR1, CR2, CR3, CT2: one series per folder, no files of its own
    assert holds_xray_files(tree)
    files = list_xray_files(tree)
    assert [f.relative_to(tree).as_posix() for f in files] == [
        "CR1/6154", "CR2/6247", "CR3/6278", "CT2/17106", "CT2/17136", "CT2/17166", "CT2/17196",
    ]
    data, metadata = read_xray_with_metadata(tree)
    assert data.shape == (7, 16, 16)
    for frame, source in zip(data, metadata["source_paths"], strict=True):
        np.testing.assert_array_equal(frame, read_xray(source))


def test_dicomdir_index_files_are_not_images(tmp_path):
    assert not any(f.name.upper().startswith("DICOMDIR") for f in list_xray_files(TREES))
    (tmp_path / "DICOMDIR-implicit").write_bytes(b"\0" * 128 + b"DICM")
    (tmp_path / "DICOMDIR.dcm").write_bytes(b"\0" * 128 + b"DICM")
    assert not holds_xray_files(tmp_path)
    with pytest.raises(XrayReadError, match="holds no PNG or DICOM"):
        read_xray(tmp_path)


def test_direct_files_win_over_sub_folders(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "sub" / "b.png")
    assert [f.name for f in list_xray_files(tmp_path)] == ["a.png"]
    assert [f.name for f in list_xray_files(tmp_path / "sub")] == ["b.png"]
    (tmp_path / "a.png").unlink()
    assert [f.name for f in list_xray_files(tmp_path)] == ["b.png"]


def test_skip_bad_leaves_the_unreadable_files_out_and_lists_them(tmp_path, xray_paths, xray_stack):
    for path in xray_paths[:4]:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    bad = tmp_path / xray_paths[2].name
    bad.write_bytes(bad.read_bytes()[:50_000])
    with pytest.raises(XrayReadError, match=bad.name):
        read_xray(tmp_path)
    data, metadata = read_xray_with_metadata(tmp_path, skip_bad=True)
    np.testing.assert_array_equal(data, xray_stack[[0, 1, 3]])
    assert [s["file_name"] for s in metadata["skipped"]] == [bad.name]
    assert "truncated" in metadata["skipped"][0]["reason"]
    np.testing.assert_array_equal(read_xray(tmp_path, skip_bad=True), data)
    with pytest.raises(XrayReadError, match="truncated"):
        read_xray(bad, skip_bad=True)  # one file is read or refused, never skipped


def test_skip_bad_with_nothing_readable_raises(tmp_path):
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(XrayReadError, match="none of the 2 files could be read"):
        read_xray(tmp_path, skip_bad=True)
