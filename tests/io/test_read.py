"""The reader: PNG/DICOM files, folders and lists → arrays + metadata (no viewer).

Expected values come from Pillow and pydicom directly (or from the arrays the test
wrote), never from ``napari_xray.io`` itself.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from fuzz.png_cases import chunks as png_chunks
from fuzz.png_cases import png_bytes, with_image_data
from napari_xray.errors import XrayReadError
from napari_xray.io.paths import list_xray_files, natural_sort_key
from napari_xray.io.read import read_xray, read_xray_with_metadata
from napari_xray.plugin._reader import napari_get_reader, read_xray_layers

FRAME_NAMES = [f"00000011_{i:03d}.png" for i in range(9)]
DICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
CR_FILES = [
    DICOM_FILES / "dicomdirtests" / "77654033" / f"CR{i}" / n
    for i, n in ((1, "6154"), (2, "6247"), (3, "6278"))
]


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png_bytes(array: np.ndarray, bit_depth: int, color_type: int) -> bytes:
    """A minimal valid PNG written by hand (Pillow cannot write 16-bit colour PNGs)."""
    height, width = array.shape[:2]
    sample = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + array[y].astype(sample).tobytes() for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _luma_reference(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma in Pillow's fixed point: (R·19595 + G·38470 + B·7471 + 2**15) >> 16."""
    r, g, b = (rgb[..., i].astype(np.uint64) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 32768) >> 16).astype(rgb.dtype)


def _save_gray(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def _dicom_expected(path: Path) -> np.ndarray:
    """Stored values → rescaled values, computed with pydicom and float64 arithmetic."""
    ds = pydicom.dcmread(path)
    slope = float(ds.get("RescaleSlope", 1))
    intercept = float(ds.get("RescaleIntercept", 0))
    return ds.pixel_array.astype(np.float64) * slope + intercept


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


# --------------------------------------------------------------------------------------
# real ChestX-ray8 frames
# --------------------------------------------------------------------------------------


def test_folder_of_real_frames_is_the_stack(xray_dir, xray_stack):
    data, metadata = read_xray_with_metadata(xray_dir)

    assert data.shape == (9, 1024, 1024)
    assert data.dtype == np.uint8
    np.testing.assert_array_equal(data, xray_stack)
    assert metadata["file_names"] == FRAME_NAMES
    assert metadata["source_paths"] == [str(xray_dir / n) for n in FRAME_NAMES]
    assert metadata["converted_to_grayscale"] == []
    assert metadata["format"] == "png"
    assert metadata["name"] == xray_dir.name


def test_single_real_file_is_2d_with_the_tutorial_statistics(xray_paths, xray_stack):
    frame = read_xray(xray_paths[1])

    assert frame.shape == (1024, 1024)
    assert frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, xray_stack[1])
    assert frame.mean() == pytest.approx(172.52233219146729)
    assert np.median(frame) == 195.0


def test_str_and_path_are_accepted(xray_paths):
    np.testing.assert_array_equal(read_xray(str(xray_paths[0])), read_xray(xray_paths[0]))


def test_a_list_keeps_the_order_given(xray_paths, xray_stack):
    order = [4, 0, 8, 2, 7, 1, 6, 3, 5]
    data, metadata = read_xray_with_metadata([str(xray_paths[i]) for i in order])

    assert data.shape == (9, 1024, 1024)
    np.testing.assert_array_equal(data, xray_stack[order])
    assert metadata["file_names"] == [FRAME_NAMES[i] for i in order]
    assert metadata["name"] == "00000011"  # common prefix of the stems


def test_a_list_of_one_file_is_still_a_stack(xray_paths, xray_stack):
    data = read_xray([xray_paths[3]])
    assert data.shape == (1, 1024, 1024)
    np.testing.assert_array_equal(data[0], xray_stack[3])


def test_frames_are_decoded_into_one_preallocated_array(xray_dir):
    """Peak NumPy memory stays near one stack (stacking a list would need two)."""
    read_xray(xray_dir / FRAME_NAMES[0])  # warm up imports
    tracemalloc.start()
    try:
        data = read_xray(xray_dir)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * data.nbytes, f"peak {peak / 1e6:.1f} MB for {data.nbytes / 1e6:.1f} MB"


# --------------------------------------------------------------------------------------
# folders: order and which files
# --------------------------------------------------------------------------------------


def test_folder_is_sorted_naturally(tmp_path):
    for number in (2, 10, 1):
        _save_gray(tmp_path / f"img_{number}.png", np.full((4, 5), number, np.uint8))

    data, metadata = read_xray_with_metadata(tmp_path)

    assert metadata["file_names"] == ["img_1.png", "img_2.png", "img_10.png"]
    assert data[:, 0, 0].tolist() == [1, 2, 10]
    assert metadata["name"] == tmp_path.name
    assert [p.name for p in list_xray_files(tmp_path)] == metadata["file_names"]


def test_natural_sort_key_orders_numbers_by_value():
    names = ["img_10.png", "IMG_2.png", "img_1.png", "img_02b.png"]
    assert sorted(names, key=natural_sort_key) == [
        "img_1.png",
        "IMG_2.png",
        "img_02b.png",
        "img_10.png",
    ]


def test_list_name_is_the_common_prefix(tmp_path):
    paths = [_save_gray(tmp_path / f"img_{n}.png", np.zeros((3, 3), np.uint8)) for n in (2, 10)]
    _, metadata = read_xray_with_metadata(paths)
    assert metadata["name"] == "img"
    _, metadata = read_xray_with_metadata(paths[1])
    assert metadata["name"] == "img_10"


def test_folder_skips_csv_text_hidden_files_and_subfolders(tmp_path):
    _save_gray(tmp_path / "00000001_000.png", np.full((8, 8), 1, np.uint8))
    _save_gray(tmp_path / "00000001_001.PNG", np.full((8, 8), 2, np.uint8))
    (tmp_path / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels\n")
    (tmp_path / "notes.txt").write_text("not an image")
    # A hidden PNG and one in a subfolder have another size: reading them would fail.
    _save_gray(tmp_path / ".hidden.png", np.zeros((3, 3), np.uint8))
    (tmp_path / "sub").mkdir()
    _save_gray(tmp_path / "sub" / "00000001_002.png", np.zeros((3, 3), np.uint8))
    (tmp_path / "sub.png").mkdir()  # a folder with an image extension

    data, metadata = read_xray_with_metadata(tmp_path)

    assert metadata["file_names"] == ["00000001_000.png", "00000001_001.PNG"]
    assert data.shape == (2, 8, 8)
    assert data[:, 0, 0].tolist() == [1, 2]


# --------------------------------------------------------------------------------------
# grayscale conversion and bit depth
# --------------------------------------------------------------------------------------


def test_rgba_la_rgb_and_palette_pngs_become_grayscale(tmp_path, rng):
    rgba = rng.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    la = rng.integers(0, 256, (6, 7, 2), dtype=np.uint8)
    gray = rng.integers(0, 256, (6, 7), dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "a_gray.png")
    Image.fromarray(rgba, "RGBA").save(tmp_path / "b_rgba.png")
    Image.fromarray(la, "LA").save(tmp_path / "c_la.png")
    Image.fromarray(rgba[..., :3].copy(), "RGB").save(tmp_path / "d_rgb.png")
    Image.fromarray(rgba[..., :3].copy(), "RGB").convert("P").save(tmp_path / "e_palette.png")

    data, metadata = read_xray_with_metadata(tmp_path)

    assert data.dtype == np.uint8
    for frame, name in zip(data, metadata["file_names"], strict=True):
        expected = np.asarray(Image.open(tmp_path / name).convert("L"))
        np.testing.assert_array_equal(frame, expected, err_msg=name)
    # independent of Pillow: the luma formula on the array we wrote; alpha ignored
    np.testing.assert_array_equal(data[1], _luma_reference(rgba))
    np.testing.assert_array_equal(data[2], la[..., 0])
    np.testing.assert_array_equal(data[0], gray)
    assert metadata["converted_to_grayscale"] == [
        {"file_name": "b_rgba.png", "original_mode": "RGBA"},
        {"file_name": "c_la.png", "original_mode": "LA"},
        {"file_name": "d_rgb.png", "original_mode": "RGB"},
        {"file_name": "e_palette.png", "original_mode": "P"},
    ]


def test_alpha_is_dropped(tmp_path, rng):
    rgba = rng.integers(0, 256, (5, 5, 4), dtype=np.uint8)
    opaque = rgba.copy()
    opaque[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(opaque, "RGBA").save(tmp_path / "b.png")
    data = read_xray(tmp_path)
    np.testing.assert_array_equal(data[0], data[1])


def test_16bit_grayscale_png_stays_uint16(tmp_path):
    values = np.array([[0, 1, 255, 256], [1000, 4095, 40000, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "pillow16.png")
    (tmp_path / "byhand16.png").write_bytes(_png_bytes(values, 16, 0))
    assert Image.open(tmp_path / "pillow16.png").mode == "I;16"  # how Pillow presents it

    for name in ("pillow16.png", "byhand16.png"):
        frame = read_xray(tmp_path / name)
        assert frame.dtype == np.uint16
        np.testing.assert_array_equal(frame, values)
    stack, metadata = read_xray_with_metadata(tmp_path)
    assert stack.dtype == np.uint16
    assert metadata["converted_to_grayscale"] == []


def test_16bit_colour_png_keeps_16_bits(tmp_path, rng):
    rgb = rng.integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    la = rng.integers(0, 65536, (5, 6, 2), dtype=np.uint16)
    (tmp_path / "rgb16.png").write_bytes(_png_bytes(rgb, 16, 2))
    (tmp_path / "la16.png").write_bytes(_png_bytes(la, 16, 4))
    # Pillow alone would drop the low byte:
    assert np.asarray(Image.open(tmp_path / "rgb16.png")).dtype == np.uint8

    data, metadata = read_xray_with_metadata([tmp_path / "rgb16.png", tmp_path / "la16.png"])

    assert data.dtype == np.uint16
    np.testing.assert_array_equal(data[0], _luma_reference(rgb))
    np.testing.assert_array_equal(data[1], la[..., 0])
    assert [c["file_name"] for c in metadata["converted_to_grayscale"]] == [
        "rgb16.png",
        "la16.png",
    ]


def test_mixing_8_and_16_bit_frames_keeps_values(tmp_path):
    small = np.full((3, 3), 200, np.uint8)
    large = np.full((3, 3), 60000, np.uint16)
    data = read_xray([_save_gray(tmp_path / "a.png", small), _save_gray(tmp_path / "b.png", large)])
    assert data.dtype == np.uint16
    assert data[:, 0, 0].tolist() == [200, 60000]


# --------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------


def test_ct_small_rescale_slope_intercept_integer_output():
    path = DICOM_FILES / "CT_small.dcm"
    ds = pydicom.dcmread(path)
    assert (ds.RescaleSlope, ds.RescaleIntercept) == (1, -1024)

    data, metadata = read_xray_with_metadata(path)

    assert data.dtype.kind == "i"
    np.testing.assert_array_equal(data, ds.pixel_array.astype(np.int64) - 1024)
    assert metadata["format"] == "dicom"
    assert metadata["modality"] == "CT"
    assert metadata["photometric_interpretation"] == "MONOCHROME2"
    assert metadata["rescale_applied"] is True
    assert metadata["inverted_monochrome1"] == []
    assert metadata["pixel_spacing"] == pytest.approx(tuple(float(v) for v in ds.PixelSpacing))
    assert metadata["pixel_spacing_source"] == "PixelSpacing"
    assert metadata["dicom"][0]["rescale_intercept"] == -1024.0
    assert metadata["name"] == "CT_small"


def test_mr_small_without_rescale_keeps_stored_values():
    path = DICOM_FILES / "MR_small.dcm"
    ds = pydicom.dcmread(path)
    data, metadata = read_xray_with_metadata(path)
    assert data.dtype == ds.pixel_array.dtype == np.int16
    np.testing.assert_array_equal(data, ds.pixel_array)
    assert metadata["modality"] == "MR"
    assert metadata["rescale_applied"] is False


@pytest.mark.parametrize("path", CR_FILES, ids=lambda p: p.parent.name)
def test_cr_monochrome1_is_rescaled_and_inverted(path):
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (0.684, 200.0)
    stored = ds.pixel_array.astype(np.float64)
    # rescaled range of 12-bit stored values, mirrored: new = (lo + hi) - value
    lo, hi = 0 * 0.684 + 200, (2**ds.BitsStored - 1) * 0.684 + 200
    expected = lo + hi - (stored * 0.684 + 200)

    data, metadata = read_xray_with_metadata(path)

    assert data.dtype == np.float32
    np.testing.assert_allclose(data, expected, rtol=1e-6)
    # bone (lowest stored value in MONOCHROME1) is the brightest output pixel
    assert np.unravel_index(np.argmax(data), data.shape) == np.unravel_index(
        np.argmin(ds.pixel_array), data.shape
    )
    assert metadata["inverted_monochrome1"] == [path.name]
    assert metadata["pixel_spacing"] == (0.1, 0.1)
    assert metadata["pixel_spacing_source"] == "ImagerPixelSpacing"


def _write_copies(folder: Path, source: Path, names_and_numbers, offset_by_number=True):
    """Copies of one DICOM file with other InstanceNumbers and distinguishable pixels."""
    folder.mkdir(exist_ok=True)
    written = {}
    for name, number in names_and_numbers:
        ds = pydicom.dcmread(source)
        ds.InstanceNumber = number
        pixels = ds.pixel_array.copy()
        pixels[0, 0] = 100 + number if offset_by_number else pixels[0, 0]
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / name)
        written[name] = pixels
    return written


def test_dicom_folder_is_sorted_by_instance_number(tmp_path):
    folder = tmp_path / "series"
    pixels = _write_copies(
        folder,
        DICOM_FILES / "MR_small.dcm",
        [("a.dcm", 3), ("b.dcm", 1), ("c.dcm", 10), ("d.dcm", 2)],
    )

    data, metadata = read_xray_with_metadata(folder)

    assert metadata["file_names"] == ["b.dcm", "d.dcm", "a.dcm", "c.dcm"]
    assert [d["instance_number"] for d in metadata["dicom"]] == [1, 2, 3, 10]
    assert data.shape == (4, 64, 64)
    for frame, name in zip(data, metadata["file_names"], strict=True):
        np.testing.assert_array_equal(frame, pixels[name])
    # a list is kept in the order given
    listed = read_xray_with_metadata([folder / "c.dcm", folder / "a.dcm"])[1]["file_names"]
    assert listed == ["c.dcm", "a.dcm"]


def test_extensionless_dicom_files_in_a_folder(tmp_path):
    folder = tmp_path / "CR"
    folder.mkdir()
    for path in CR_FILES:
        shutil.copy(path, folder / path.name)  # 6154, 6247, 6278: no extension
    (folder / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")

    assert napari_get_reader(str(folder)) is read_xray_layers
    data, metadata = read_xray_with_metadata(folder)

    assert metadata["file_names"] == ["6154", "6247", "6278"]
    expected = [read_xray(p) for p in CR_FILES]
    np.testing.assert_array_equal(data, np.stack(expected))


def test_one_dicom_file_among_other_series_reads_only_that_file(tmp_path):
    for name in ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"):
        shutil.copy(DICOM_FILES / name, tmp_path / name)
    for path in CR_FILES:
        shutil.copy(path, tmp_path / f"{path.name}.dcm")

    data, metadata = read_xray_with_metadata(tmp_path / "MR_small.dcm")

    np.testing.assert_array_equal(data, pydicom.dcmread(DICOM_FILES / "MR_small.dcm").pixel_array)
    assert metadata["file_names"] == ["MR_small.dcm"]


def test_uppercase_and_dicom_extensions(tmp_path):
    shutil.copy(DICOM_FILES / "CT_small.dcm", tmp_path / "CT.DCM")
    shutil.copy(DICOM_FILES / "CT_small.dcm", tmp_path / "CT2.dicom")
    expected = _dicom_expected(DICOM_FILES / "CT_small.dcm")
    for name in ("CT.DCM", "CT2.dicom"):
        assert napari_get_reader(str(tmp_path / name)) is read_xray_layers
        np.testing.assert_array_equal(read_xray(tmp_path / name), expected)


def test_rgb_dicom_becomes_grayscale():
    path = DICOM_FILES / "SC_rgb_small_odd.dcm"
    rgb = pydicom.dcmread(path).pixel_array
    data, metadata = read_xray_with_metadata(path)
    np.testing.assert_array_equal(data, _luma_reference(rgb))
    assert metadata["converted_to_grayscale"] == [{"file_name": path.name, "original_mode": "RGB"}]


def _undecodable(path: Path) -> bool:
    try:
        pydicom.dcmread(path).pixel_array  # noqa: B018
    except Exception:
        return True
    return False


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("SC_rgb_jpeg_gdcm.dcm", "pylibjpeg-libjpeg"),  # JPEG lossless: no plugin at all
        ("JPEG-lossy.dcm", "pylibjpeg-libjpeg"),  # 12-bit JPEG: Pillow present but fails
    ],
)
def test_compressed_dicom_without_codec_names_the_package(name, package):
    path = DICOM_FILES / name
    # The test environment (pyproject's testing extra) has no pylibjpeg/gdcm.
    assert _undecodable(path), f"a decoder for {name} is installed; uninstall it for this test"

    with pytest.raises(XrayReadError) as excinfo:
        read_xray(path)

    message = str(excinfo.value)
    assert name in message
    assert package in message
    assert "python-gdcm" in message
    assert "pip install" in message


def test_dicom_scale_goes_into_the_layer(tmp_path):
    ((data, kwargs, layer_type),) = read_xray_layers(str(DICOM_FILES / "CT_small.dcm"))
    spacing = tuple(float(v) for v in pydicom.dcmread(DICOM_FILES / "CT_small.dcm").PixelSpacing)
    assert layer_type == "image"
    assert kwargs["scale"] == pytest.approx(spacing)

    folder = tmp_path / "series"
    _write_copies(folder, DICOM_FILES / "CT_small.dcm", [("x.dcm", 1), ("y.dcm", 2)])
    ((data, kwargs, _),) = read_xray_layers(str(folder))
    assert data.shape == (2, 128, 128)
    assert kwargs["scale"] == pytest.approx((1.0, *spacing))


def test_png_layer_has_no_scale_and_is_not_rgb(tmp_path):
    # width 3 would make napari guess RGB without rgb=False
    paths = [_save_gray(tmp_path / f"f{i}.png", np.full((4, 3), i, np.uint8)) for i in range(2)]
    ((data, kwargs, layer_type),) = napari_get_reader([str(p) for p in paths])(
        [str(p) for p in paths]
    )
    assert data.shape == (2, 4, 3)
    assert kwargs["rgb"] is False
    assert kwargs["colormap"] == "gray"
    assert "scale" not in kwargs
    assert kwargs["name"] == "f"
    assert kwargs["metadata"]["file_names"] == ["f0.png", "f1.png"]


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


def test_xray_read_error_is_a_value_error():
    assert issubclass(XrayReadError, ValueError)


def test_mixed_sizes_name_the_first_differing_file(tmp_path):
    for i in range(3):
        _save_gray(tmp_path / f"00000011_00{i}.png", np.zeros((64, 64), np.uint8))
    _save_gray(tmp_path / "00000011_003.png", np.zeros((32, 48), np.uint8))
    _save_gray(tmp_path / "00000011_004.png", np.zeros((16, 16), np.uint8))

    with pytest.raises(XrayReadError) as excinfo:
        read_xray(tmp_path)

    message = str(excinfo.value)
    assert "00000011_003.png is 32×48" in message
    assert "first frame 00000011_000.png is 64×64" in message
    assert "00000011_004" not in message
    assert "open them separately" in message
    assert excinfo.value.path == str(tmp_path / "00000011_003.png")


def test_empty_folder(tmp_path):
    assert napari_get_reader(str(tmp_path)) is None
    with pytest.raises(XrayReadError, match="holds no PNG or DICOM files"):
        read_xray(tmp_path)


def test_folder_with_only_other_files(tmp_path):
    (tmp_path / "Data_Entry_2017.csv").write_text("a,b\n")
    (tmp_path / "readme.txt").write_text("x")
    assert napari_get_reader(str(tmp_path)) is None
    with pytest.raises(XrayReadError, match="holds no PNG or DICOM files"):
        read_xray(tmp_path)


def test_truncated_png(tmp_path, xray_paths):
    data = xray_paths[1].read_bytes()
    bad = tmp_path / "00000011_001.png"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="truncated"):  # what Pillow itself says
        Image.open(bad).load()

    with pytest.raises(XrayReadError) as excinfo:
        read_xray(bad)
    assert "00000011_001.png is truncated" in str(excinfo.value)
    assert "re-download" in str(excinfo.value)


def test_truncated_png_inside_a_folder_is_named(tmp_path, rng):
    noise = rng.integers(0, 256, (64, 64), dtype=np.uint8)  # incompressible
    _save_gray(tmp_path / "a.png", noise)
    _save_gray(tmp_path / "b.png", noise)
    _save_gray(tmp_path / "c.png", noise)
    raw = (tmp_path / "b.png").read_bytes()
    (tmp_path / "b.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(XrayReadError, match=r"b\.png"):
        read_xray(tmp_path)


@pytest.mark.parametrize("content", [b"", b"<html>404 Not Found</html>\n"], ids=["empty", "html"])
def test_non_image_with_png_extension(tmp_path, content):
    bad = tmp_path / "x.png"
    bad.write_bytes(content)
    assert napari_get_reader(str(bad)) is read_xray_layers  # claimed by extension only
    with pytest.raises(XrayReadError) as excinfo:
        read_xray(bad)
    assert "x.png is not a readable image" in str(excinfo.value)


def test_decompression_bomb_header(tmp_path):
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)  # 4e8 pixels claimed
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b""))
    assert bomb.stat().st_size < 100
    with pytest.raises(Image.DecompressionBombError):  # Pillow refuses at open
        Image.open(bomb)

    with pytest.raises(XrayReadError) as excinfo:
        read_xray(bomb)
    message = str(excinfo.value)
    assert "bomb.png" in message
    assert "decompression bomb" in message
    assert "max_pixels" in message  # how to raise napari-xray's limit (not Pillow's)
    assert "NAPARI_XRAY_MAX_PIXELS" in message


def test_not_a_dicom_file(tmp_path):
    bad = tmp_path / "scan.dcm"
    bad.write_text("patient list, not an image\n")
    with pytest.raises(XrayReadError, match=r"scan\.dcm is not a DICOM file"):
        read_xray(bad)


def test_dicom_without_pixels(tmp_path):
    ds = pydicom.dcmread(DICOM_FILES / "CT_small.dcm")
    del ds.PixelData
    ds.save_as(tmp_path / "nopixels.dcm")
    with pytest.raises(XrayReadError, match=r"nopixels\.dcm has no pixel data"):
        read_xray(tmp_path / "nopixels.dcm")


def test_png_and_dicom_are_not_mixed(tmp_path):
    _save_gray(tmp_path / "a.png", np.zeros((128, 128), np.uint8))
    shutil.copy(DICOM_FILES / "CT_small.dcm", tmp_path / "b.dcm")
    with pytest.raises(XrayReadError, match="PNG and DICOM"):
        read_xray(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(XrayReadError, match="does not exist"):
        read_xray(tmp_path / "nope.png")
    with pytest.raises(XrayReadError, match="does not exist"):
        read_xray([tmp_path / "nope.png"])


def test_foreign_file_and_bad_types(tmp_path):
    (tmp_path / "foo.tif").write_bytes(b"II*\0")
    with pytest.raises(XrayReadError, match="neither a PNG nor a DICOM"):
        read_xray(tmp_path / "foo.tif")
    with pytest.raises(XrayReadError, match="no paths"):
        read_xray([])
    with pytest.raises(TypeError):
        read_xray(42)


# --------------------------------------------------------------------------------------
# napari_get_reader: claims cheaply, declines what is not ours
# --------------------------------------------------------------------------------------


def test_get_reader_claims_ours(tmp_path, xray_dir, xray_paths):
    assert napari_get_reader(str(xray_dir)) is read_xray_layers
    assert napari_get_reader(str(xray_paths[0])) is read_xray_layers
    assert napari_get_reader([str(p) for p in xray_paths[:3]]) is read_xray_layers
    assert napari_get_reader(str(DICOM_FILES / "CT_small.dcm")) is read_xray_layers


def test_get_reader_declines_others(tmp_path):
    (tmp_path / "foo.tif").write_bytes(b"II*\0")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "store.zarr").mkdir()
    (tmp_path / "store.zarr" / "a.png").write_bytes(b"")
    only_text = tmp_path / "texts"
    only_text.mkdir()
    (only_text / "notes.txt").write_text("x")

    assert napari_get_reader(str(tmp_path / "foo.tif")) is None
    assert napari_get_reader(str(only_text)) is None
    assert napari_get_reader(str(tmp_path / "missing.png")) is None
    assert napari_get_reader(str(tmp_path / "missing")) is None
    assert napari_get_reader([str(tmp_path / "a.png"), str(tmp_path / "foo.tif")]) is None
    assert napari_get_reader([]) is None
    assert napari_get_reader(str(tmp_path / "store.zarr")) is None  # reserved for Zarr


def test_get_reader_decodes_nothing(tmp_path, monkeypatch):
    _save_gray(tmp_path / "a.png", np.zeros((3, 3), np.uint8))
    shutil.copy(DICOM_FILES / "CT_small.dcm", tmp_path / "b.dcm")

    def fail(*args, **kwargs):
        raise AssertionError("napari_get_reader must not open images")

    monkeypatch.setattr(Image, "open", fail)
    monkeypatch.setattr(pydicom, "dcmread", fail)
    assert napari_get_reader(str(tmp_path / "a.png")) is read_xray_layers
    assert napari_get_reader(str(tmp_path / "b.dcm")) is read_xray_layers
    assert napari_get_reader(str(tmp_path)) is read_xray_layers


def _write_store_metadata(store: Path) -> Path:
    """The two ``zarr.json`` files that make ``store`` look like a napari-xray batch store."""
    group = {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {"napari_xray": {"format": "napari-xray-batch", "filters": []}},
    }
    array = {
        "zarr_format": 3,
        "node_type": "array",
        "attributes": {"napari_xray": {"filter": "log"}},
    }
    (store / "log").mkdir(parents=True)
    (store / "zarr.json").write_text(json.dumps(group))
    (store / "log" / "zarr.json").write_text(json.dumps(array))
    return store


def test_get_reader_never_raises(tmp_path):
    assert napari_get_reader(42) is None
    assert napari_get_reader([1, 2]) is None
    assert napari_get_reader(str(tmp_path / ("x" * 5000 + ".png"))) is None  # name too long
    assert napari_get_reader("bad\0name.png") is None


def test_the_readers_first_question_is_cheap(tmp_path):
    """Deciding whether napari-xray reads a path imports no decoder, engine, batch or Dask."""
    png = _save_gray(tmp_path / "a.png", np.zeros((3, 3), np.uint8))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        _save_gray(folder / f"f{i}.png", np.zeros((3, 3), np.uint8))
    store = _write_store_metadata(tmp_path / "out.zarr")
    code = (
        "import json, sys\n"
        "from napari_xray.plugin._reader import napari_get_reader\n"
        f"paths = {[str(png), str(folder), str(store), str(store / 'log')]!r}\n"
        "readers = [getattr(napari_get_reader(p), '__name__', None) for p in paths]\n"
        "heavy = ('cv2', 'scipy', 'zarr', 'dask', 'PIL', 'pydicom', 'napari', 'qtpy',\n"
        "         'napari_xray.engine', 'napari_xray.batch')\n"
        "loaded = sorted(m for m in sys.modules\n"
        "                if any(m == h or m.startswith(h + '.') for h in heavy))\n"
        "print(json.dumps({'readers': readers, 'loaded': loaded}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["readers"] == [
        "read_xray_layers",
        "read_xray_layers",
        "open_store_layers",
        "open_store_layers",
    ]
    assert result["loaded"] == []


# --------------------------------------------------------------------------------------
# package surface
# --------------------------------------------------------------------------------------


def test_top_level_exports():
    import napari_xray

    assert napari_xray.read_xray is read_xray
    assert napari_xray.XrayReadError is XrayReadError


def test_io_imports_neither_napari_nor_qt():
    code = (
        "import sys, napari_xray.io.read as m\n"
        f"m.read_xray({str(DICOM_FILES / 'CT_small.dcm')!r})\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------
# damaged PNGs: an error naming the file and what is wrong, never zeros or changed pixels
# --------------------------------------------------------------------------------------


def _reencoded_rows(frame: np.ndarray, rows: int) -> bytes:
    """The first ``rows`` rows of an 8-bit gray frame as a zlib stream (filter 0)."""
    return zlib.compress(b"".join(b"\x00" + frame[y].tobytes() for y in range(rows)))


def test_png_image_data_ending_early_is_an_error(tmp_path, xray_paths, xray_stack):
    short = tmp_path / "short.png"
    data = xray_paths[1].read_bytes()
    short.write_bytes(with_image_data(data, _reencoded_rows(xray_stack[1], 512)))
    assert not np.asarray(Image.open(short))[512:].any()  # Pillow: 512 zero rows, no error

    with pytest.raises(XrayReadError) as excinfo:
        read_xray(short)
    message = str(excinfo.value)
    assert "short.png is damaged: its image data ends after 512 of 1024 rows" in message
    assert "re-download or re-export it" in message
    assert excinfo.value.path == str(short)


def test_png_idat_bit_flip_is_an_error(tmp_path, xray_paths, xray_stack):
    """Image data altered in a way only the IDAT CRC reveals: Pillow returns the changed pixel."""
    rows = b"".join(b"\x00" + row.tobytes() for row in xray_stack[1])
    altered = bytearray(rows)
    altered[len(rows) // 2 + 7] ^= 0x10  # one bit of one pixel (zlib's own checksum made to match)
    original = zlib.compress(rows, 0)
    changed = zlib.compress(bytes(altered), 0)
    good = with_image_data(xray_paths[1].read_bytes(), original)
    offset, length, _ = next(c for c in png_chunks(good) if c[2] == b"IDAT")
    flipped = tmp_path / "flipped.png"  # the IDAT's CRC is still the one of the original data
    flipped.write_bytes(good[: offset + 8] + changed + good[offset + 8 + length :])
    pillow = np.asarray(Image.open(flipped))
    assert np.count_nonzero(pillow != xray_stack[1]) == 1  # silently one pixel changed

    with pytest.raises(XrayReadError) as excinfo:
        read_xray(flipped)
    message = str(excinfo.value)
    assert f"flipped.png is damaged: the CRC of its IDAT chunk at byte {offset}" in message
    assert "re-download or re-export it" in message


def test_png_ihdr_claiming_one_more_row_is_an_error(tmp_path, xray_paths):
    data = xray_paths[1].read_bytes()
    taller = tmp_path / "taller.png"
    ihdr = struct.pack(">IIBBBBB", 1024, 1025, 8, 0, 0, 0, 0)
    taller.write_bytes(data[:8] + _png_chunk(b"IHDR", ihdr) + data[33:])
    assert not np.asarray(Image.open(taller))[-1].any()  # Pillow: a zero row

    with pytest.raises(XrayReadError, match=r"taller\.png is damaged: its image data ends after "
                       r"1024 of 1025 rows"):  # fmt: skip
        read_xray(taller)


@pytest.mark.parametrize("length", [0, 8, 12])
def test_png_short_ihdr_is_an_error(tmp_path, xray_paths, length):
    data = xray_paths[1].read_bytes()
    short = tmp_path / "short_ihdr.png"
    short.write_bytes(data[:8] + _png_chunk(b"IHDR", data[16 : 16 + length]) + data[33:])
    with pytest.raises(XrayReadError, match=rf"short_ihdr\.png is damaged: its IHDR chunk holds "
                       rf"{length} bytes instead of 13"):  # fmt: skip
        read_xray(short)


def test_png_200_mb_text_chunk_is_skipped_unread(tmp_path, xray_paths, xray_stack):
    data = xray_paths[1].read_bytes()
    big = tmp_path / "big_text.png"
    size = 200_000_000
    with open(big, "wb") as fh:  # a sparse file: the chunk's data is a hole of zeros
        fh.write(data[:33] + struct.pack(">I", size) + b"tEXt")
        fh.seek(size, 1)
        fh.write(b"\x00\x00\x00\x00" + data[33:])  # a wrong CRC: the chunk is never read
    assert big.stat().st_size > size

    read_xray(xray_paths[0])  # imports warm
    tracemalloc.start()
    try:
        frame = read_xray(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(frame, xray_stack[1])
    assert peak < 20e6, f"{peak / 1e6:.0f} MB"

    claimed = tmp_path / "claims.png"  # the header claims 200 MB the file does not hold
    claimed.write_bytes(data[:33] + struct.pack(">I", size) + b"tEXtComment\x00x" + data[33:])
    with pytest.raises(XrayReadError, match=r"claims\.png is truncated: its tEXt chunk at byte 33 "
                       r"needs 200000000 bytes"):  # fmt: skip
        read_xray(claimed)


def _zeros_zlib_stream(size: int) -> bytes:
    """A valid zlib stream of ``size`` zero bytes, built from one repeated flushed block."""
    block = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    flushed = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats, rest = divmod(size, block)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = compressor.compress(bytes(rest)) + compressor.flush()
    adler = ((size % 65521) << 16) | 1  # the Adler-32 of zeros
    return b"\x78\xda" + flushed * repeats + tail + struct.pack(">I", adler)


def test_png_16bit_rgba_bomb_is_refused_from_its_header(tmp_path):
    """0.96 MB that inflate to 0.97 GB (11000² RGBA, 16 bits): refused before any inflating."""
    side = 11000
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    stream = _zeros_zlib_stream(side * (1 + side * 8))
    bomb = tmp_path / "bomb16.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", stream)
        + _png_chunk(b"IEND", b"")
    )  # fmt: skip
    assert bomb.stat().st_size < 1e6

    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(XrayReadError) as excinfo:
            read_xray(bomb)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(excinfo.value)
    assert "bomb16.png" in message and "11000×11000" in message
    assert "max_pixels" in message and "NAPARI_XRAY_MAX_PIXELS" in message
    assert seconds < 1.0 and peak < 10e6, (seconds, peak)


def test_png_named_like_one_but_another_format(tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(photo, format="JPEG")
    with pytest.raises(XrayReadError, match=r"photo\.png is not a readable image: it is a JPEG "
                       "image, not a PNG"):  # fmt: skip
        read_xray(photo)


def test_png_without_iend_is_truncated(tmp_path, xray_paths):
    data = xray_paths[1].read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[:-12])
    with pytest.raises(XrayReadError, match=r"cut\.png is truncated: it ends at byte \d+ without "
                       "an IEND chunk"):  # fmt: skip
        read_xray(cut)


def test_interlaced_and_low_bit_depth_pngs_match_pillow(tmp_path, rng):
    gray = rng.integers(0, 256, (19, 27), dtype=np.uint8)
    rgb = rng.integers(0, 256, (19, 27, 3), dtype=np.uint8)
    (tmp_path / "a_adam7_gray.png").write_bytes(png_bytes(gray, 8, 0, interlace=True))
    (tmp_path / "b_adam7_rgb.png").write_bytes(png_bytes(rgb, 8, 2, interlace=True))
    for bits in (2, 4):
        Image.fromarray(gray >> (8 - bits)).save(tmp_path / f"c_gray{bits}.png", bits=bits)
    Image.fromarray(gray > 100).save(tmp_path / "d_bilevel.png")

    data, metadata = read_xray_with_metadata(tmp_path)

    for frame, name in zip(data, metadata["file_names"], strict=True):
        expected = np.asarray(Image.open(tmp_path / name).convert("L"))
        np.testing.assert_array_equal(frame, expected, err_msg=name)
    np.testing.assert_array_equal(data[0], gray)  # independent of Pillow
    np.testing.assert_array_equal(data[1], _luma_reference(rgb))
    assert [c["original_mode"] for c in metadata["converted_to_grayscale"]] == ["RGB", "1"]


def test_interlaced_png_ending_early_is_an_error(tmp_path, rng):
    gray = rng.integers(0, 256, (19, 27), dtype=np.uint8)
    data = png_bytes(gray, 8, 0, interlace=True)
    stream = zlib.decompress(data[41 : 41 + struct.unpack(">I", data[33:37])[0]])
    cut = tmp_path / "adam7_cut.png"
    cut.write_bytes(with_image_data(data, zlib.compress(stream[:300])))
    with pytest.raises(XrayReadError, match=r"adam7_cut\.png is damaged: its image data ends after "
                       r"300 of the \d+ bytes of interlaced image data"):  # fmt: skip
        read_xray(cut)


# --------------------------------------------------------------------------------------
# size limits: checked from the header, named in the message, settable
# --------------------------------------------------------------------------------------


def test_size_limits_are_settable_by_keyword_and_environment(tmp_path, monkeypatch):
    png = _save_gray(tmp_path / "wide.png", np.zeros((200, 300), np.uint8))
    with pytest.raises(XrayReadError, match=r"wide\.png: .*300×200 pixels .*max_pixels"):
        read_xray(png, max_pixels=50_000)
    assert read_xray(png, max_pixels=60_000).shape == (200, 300)

    monkeypatch.setenv("NAPARI_XRAY_MAX_PIXELS", "50_000")
    with pytest.raises(XrayReadError, match="NAPARI_XRAY_MAX_PIXELS"):
        read_xray_layers(str(png))  # napari's reader honours the environment
    assert read_xray(png, max_pixels=1e5).shape == (200, 300)  # the keyword wins
    monkeypatch.setenv("NAPARI_XRAY_MAX_PIXELS", "lots")
    with pytest.raises(XrayReadError, match=r"NAPARI_XRAY_MAX_PIXELS='lots' is not a positive"):
        read_xray(png)
    monkeypatch.delenv("NAPARI_XRAY_MAX_PIXELS")

    dose = DICOM_FILES / "rtdose.dcm"  # 15 frames of 10×10 uint32: 6000 bytes decoded
    assert read_xray(dose, max_bytes=6000).shape == (15, 10, 10)
    with pytest.raises(XrayReadError, match=r"rtdose\.dcm: .*15 frame\(s\) of 10×10 .*max_bytes"):
        read_xray(dose, max_bytes=5999)
    monkeypatch.setenv("NAPARI_XRAY_MAX_BYTES", "5999")
    with pytest.raises(XrayReadError, match="NAPARI_XRAY_MAX_BYTES"):
        read_xray(dose)


def test_the_default_limits_let_large_radiographs_through(tmp_path):
    """A 5000 × 6000 16-bit mammogram-sized PNG is read (30 megapixels < 50)."""
    big = tmp_path / "mammo.png"
    Image.fromarray(np.full((6000, 5000), 1234, np.uint16)).save(big, compress_level=1)
    frame = read_xray(big)
    assert frame.shape == (6000, 5000) and frame.dtype == np.uint16 and frame[-1, -1] == 1234


# --------------------------------------------------------------------------------------
# damaged DICOM headers and encodings
# --------------------------------------------------------------------------------------


def _ct_small_with(tmp_path: Path, name: str, **fields) -> Path:
    ds = pydicom.dcmread(DICOM_FILES / "CT_small.dcm")
    for keyword, value in fields.items():
        setattr(ds, keyword, value)
    path = tmp_path / name
    with warnings.catch_warnings():  # pydicom warns about the values these tests want
        warnings.simplefilter("ignore")
        ds.save_as(path)
    return path


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("keyword", ["RescaleSlope", "RescaleIntercept"])
def test_dicom_non_finite_rescale_is_an_error(tmp_path, keyword, value):
    path = _ct_small_with(tmp_path, "rescale.dcm", **{keyword: value})
    with pytest.raises(XrayReadError) as excinfo:
        read_xray(path)
    message = str(excinfo.value)
    assert f"rescale.dcm: {keyword} is {float(value)}" in message
    assert "correct" in message and "DICOM editor" in message


def test_dicom_rgb_32bit_keeps_its_values():
    path = DICOM_FILES / "SC_rgb_rle_32bit.dcm"
    rgb = pydicom.dcmread(path).pixel_array
    assert rgb.dtype == np.uint32 and rgb.max() > 65535
    data = read_xray(path)
    assert data.dtype == np.uint32
    np.testing.assert_array_equal(data, _luma_reference(rgb))


def test_dicom_little_endian_labelled_big_endian_is_refused(tmp_path):
    raw = (DICOM_FILES / "CT_small.dcm").read_bytes()
    relabelled = tmp_path / "relabelled.dcm"  # the file meta edited, the data set untouched
    relabelled.write_bytes(raw.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.2\x00", 1))
    with pytest.raises(XrayReadError, match=r"relabelled\.dcm is labelled Explicit VR Big Endian "
                       "but its data set is encoded little endian"):  # fmt: skip
        read_xray(relabelled)

    for source in ("CT_small.dcm", "MR_small.dcm"):  # a writer that forgot to swap the pixels
        ds = pydicom.dcmread(DICOM_FILES / source)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
        unswapped = tmp_path / f"unswapped_{source}"
        pydicom.dcmwrite(unswapped, ds, implicit_vr=False, little_endian=False, force_encoding=True)
        original = pydicom.dcmread(DICOM_FILES / source).pixel_array
        assert not np.array_equal(pydicom.dcmread(unswapped).pixel_array, original)
        with pytest.raises(XrayReadError, match=rf"unswapped_{source} is labelled Explicit VR Big "
                           "Endian but its pixel data is stored little endian"):  # fmt: skip
            read_xray(unswapped)

    # a real big-endian file is read as it should be
    np.testing.assert_array_equal(
        read_xray(DICOM_FILES / "MR_small_bigendian.dcm"), read_xray(DICOM_FILES / "MR_small.dcm")
    )


@pytest.mark.parametrize("keyword", ["Rows", "Columns"])
def test_dicom_empty_rows_or_columns_is_an_error(tmp_path, keyword):
    path = _ct_small_with(tmp_path, "empty.dcm", **{keyword: None})
    with pytest.raises(XrayReadError, match=rf"empty\.dcm: {keyword} is missing or empty"):
        read_xray(path)


def test_dicom_bits_stored_zero_is_an_error(tmp_path):
    path = _ct_small_with(tmp_path, "bits.dcm", BitsStored=0)
    with pytest.raises(XrayReadError, match=r"bits\.dcm: BitsStored is 0"):
        read_xray(path)


def test_dicom_unknown_transfer_syntax_is_an_error(tmp_path):
    raw = (DICOM_FILES / "CT_small.dcm").read_bytes()
    path = tmp_path / "private.dcm"
    path.write_bytes(raw.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.9.9.9\x00", 1))
    with pytest.raises(XrayReadError) as excinfo:
        read_xray(path)
    message = str(excinfo.value)
    assert "private.dcm states the transfer syntax '1.2.840.10008.9.9.9'" in message
    assert "convert it to Explicit VR Little Endian" in message


def test_dicom_padded_with_zeros_is_read_without_parsing_the_padding(tmp_path):
    padded = tmp_path / "padded.dcm"
    padded.write_bytes((DICOM_FILES / "CT_small.dcm").read_bytes() + bytes(8 << 20))
    read_xray(DICOM_FILES / "CT_small.dcm")  # imports warm
    start = time.perf_counter()
    data = read_xray(padded)
    seconds = time.perf_counter() - start
    np.testing.assert_array_equal(data, _dicom_expected(DICOM_FILES / "CT_small.dcm"))
    assert seconds < 0.5, f"{seconds:.2f} s for 8 MB of padding"


def test_deflated_dicom_bomb_is_refused_before_inflating(tmp_path):
    ds = pydicom.dcmread(DICOM_FILES / "image_dfl.dcm")
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian
    side = 8000  # 64 megapixels of zeros, deflated to well under 1 MB
    ds.Rows = ds.Columns = side
    ds.PixelData = bytes(side * side)
    bomb = tmp_path / "bomb_dfl.dcm"
    ds.save_as(bomb)
    assert bomb.stat().st_size < 1e6

    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(XrayReadError) as excinfo:
            read_xray(bomb)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(excinfo.value)
    assert "bomb_dfl.dcm" in message and "8000×8000" in message and "max_pixels" in message
    assert seconds < 1.0 and peak < 16e6, (seconds, peak)
    # within the limits a deflated file is read, equal to pydicom's own decode
    np.testing.assert_array_equal(
        read_xray(DICOM_FILES / "image_dfl.dcm"), _dicom_expected(DICOM_FILES / "image_dfl.dcm")
    )


def test_dicom_pixel_data_shorter_than_its_header_or_truncated(tmp_path):
    ds = pydicom.dcmread(DICOM_FILES / "CT_small.dcm")
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    ds.save_as(tmp_path / "half.dcm")
    with pytest.raises(XrayReadError, match=r"half\.dcm is damaged: its pixel data holds 16384 "
                       "bytes, fewer than the 32768"):  # fmt: skip
        read_xray(tmp_path / "half.dcm")

    raw = (DICOM_FILES / "CT_small.dcm").read_bytes()  # 126 bytes of padding after the pixels
    (tmp_path / "cut.dcm").write_bytes(raw[:-1000])
    with pytest.raises(XrayReadError, match=r"cut\.dcm is truncated: its pixel data needs 862 "
                       "bytes more than the file holds"):  # fmt: skip
        read_xray(tmp_path / "cut.dcm")


# --------------------------------------------------------------------------------------
# napari_get_reader never raises
# --------------------------------------------------------------------------------------


def test_get_reader_with_300_character_names_returns_none(tmp_path):
    long = "x" * 300
    for path in (
        str(tmp_path / f"{long}.png"),
        str(tmp_path / f"{long}.dcm"),
        str(tmp_path / long),
        str(tmp_path / long / "a.png"),
        [str(tmp_path / f"{long}.png")],
    ):
        assert napari_get_reader(path) is None


def test_get_reader_declines_whatever_goes_wrong(tmp_path, monkeypatch):
    import napari_xray.plugin._reader as reader

    _save_gray(tmp_path / "a.png", np.zeros((3, 3), np.uint8))

    def broken(path):
        raise RuntimeError("an unexpected failure inside a check")

    monkeypatch.setattr(reader, "path_kind", broken)
    assert napari_get_reader(str(tmp_path / "a.png")) is None
