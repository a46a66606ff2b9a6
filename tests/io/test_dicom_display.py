"""DICOM display on generated DX/CR radiographs: every window and VOI LUT of the
header becomes contrast limits under which napari shows what pydicom's
``apply_voi_lut`` computes; spacing tags give millimetres; identifying values go
nowhere."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from napari_xray.io.read import read_xray_with_metadata
from radiographs import IDENTIFYING_VALUES, write_radiograph


def _napari_brightness(values, limits):
    """What napari's gray colormap shows for ``values`` under ``limits``: 0 black … 1 white."""
    low, high = limits
    return np.clip((np.asarray(values, np.float64) - low) / (high - low), 0, 1)


def _dicom_brightness(path, index: int, prefer_lut: bool):
    """What a DICOM display shows (PS3.3 C.11): the VOI output scaled 0…1, white at the
    minimum for MONOCHROME1."""
    ds = pydicom.dcmread(path)
    modality = np.asarray(apply_modality_lut(ds.pixel_array, ds))  # integers unless rescaled

    def voi(x):
        return np.asarray(apply_voi_lut(np.asarray(x), ds, index=index, prefer_lut=prefer_lut),
                          np.float64)

    darkest, brightest = voi([-10**9])[0], voi([10**9])[0]
    shown = (voi(modality) - darkest) / (brightest - darkest)
    return 1 - shown if ds.PhotometricInterpretation == "MONOCHROME1" else shown


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("function", [None, "LINEAR", "LINEAR_EXACT"])
@pytest.mark.parametrize("modality", ["DX", "CR"])
def test_every_window_shows_what_dicom_windowing_computes(tmp_path, photometric, function,
                                                          modality):
    windows = [(2048, 4096, "FULL"), (2500.5, 801, "LUNG"), (3300, 300, "BONE")]
    path = write_radiograph(tmp_path / "image.dcm", modality=modality, photometric=photometric,
                            windows=windows, voi_function=function)
    data, metadata = read_xray_with_metadata(path)
    found = metadata["windows"]
    assert [w["name"] for w in found] == ["FULL", "LUNG", "BONE"]
    assert {w["function"] for w in found} == {function or "LINEAR"}
    for index, window in enumerate(found):
        napari = _napari_brightness(data, window["limits"])
        dicom = _dicom_brightness(path, index, prefer_lut=False)
        np.testing.assert_allclose(napari, dicom, atol=1e-9, err_msg=window["name"])
        assert not np.all(napari == napari.flat[0])  # the window shows detail


def test_a_sigmoid_window_is_shown_linear_over_its_width(tmp_path):
    path = write_radiograph(tmp_path / "sigmoid.dcm", windows=[(2000, 1000, "SOFT")],
                            voi_function="SIGMOID")
    _, metadata = read_xray_with_metadata(path)
    (window,) = metadata["windows"]
    assert window["function"] == "SIGMOID" and window["limits"] == (1500.0, 2500.0)
    ds = pydicom.dcmread(path)
    middle = apply_voi_lut(np.array([2000.0]), ds, prefer_lut=False)[0]
    top = apply_voi_lut(np.array([1e9]), ds, prefer_lut=False)[0]
    assert middle == pytest.approx(top / 2)  # the sigmoid's centre: half way, as the linear


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_voi_lut_sequences_come_first_and_show_what_apply_voi_lut_computes(tmp_path,
                                                                           photometric):
    ramp = [round(k * 65535 / 1499) for k in range(1500)]  # 1,500 entries from 1,200
    steep = [round(k * 65535 / 599) for k in range(600)]
    path = write_radiograph(
        tmp_path / "lut.dcm", photometric=photometric, windows=[(2048, 4096, "FULL")],
        voi_luts=[(1200, ramp, "CHEST LUT"), (1700, steep, "DETAIL LUT")])
    data, metadata = read_xray_with_metadata(path)
    names = [w["name"] for w in metadata["windows"]]
    assert names == ["CHEST LUT", "DETAIL LUT", "FULL"]
    for index in range(2):
        window = metadata["windows"][index]
        assert window["function"] == "LUT"
        napari = _napari_brightness(data, window["limits"])
        dicom = _dicom_brightness(path, index, prefer_lut=True)
        np.testing.assert_allclose(napari, dicom, atol=0.5 / 65535 + 1e-12)
    napari = _napari_brightness(data, metadata["windows"][2]["limits"])
    np.testing.assert_allclose(napari, _dicom_brightness(path, 0, prefer_lut=False), atol=1e-9)


def test_windows_follow_the_rescale(tmp_path):
    path = write_radiograph(tmp_path / "rescaled.dcm", rescale=(0.5, -100.0),
                            windows=[(900, 1200, "RESCALED")])
    data, metadata = read_xray_with_metadata(path)
    assert data.dtype == np.float32
    napari = _napari_brightness(data, metadata["windows"][0]["limits"])
    np.testing.assert_allclose(napari, _dicom_brightness(path, 0, prefer_lut=False), atol=1e-6)


def test_unusable_windows_are_left_out(tmp_path):
    path = write_radiograph(tmp_path / "bad.dcm",
                            windows=[(2048, 0, "ZERO"), (2048, 0.5, "TOO NARROW"), (100, 50, "OK")])
    _, metadata = read_xray_with_metadata(path)
    assert [w["name"] for w in metadata["windows"]] == ["OK"]
    _, none = read_xray_with_metadata(write_radiograph(tmp_path / "none.dcm"))
    assert none["windows"] == []


@pytest.mark.parametrize("keyword", ["PixelSpacing", "ImagerPixelSpacing"])
def test_either_spacing_tag_gives_millimetres(tmp_path, keyword):
    from napari_xray.plugin._reader import napari_get_reader

    path = write_radiograph(tmp_path / "spaced.dcm", spacing={keyword: (0.139, 0.143)})
    ((_, kwargs, _),) = napari_get_reader(str(path))(str(path))
    assert kwargs["scale"] == (0.139, 0.143) and kwargs["units"] == ("mm", "mm")
    assert kwargs["metadata"]["pixel_spacing_source"] == keyword


def test_identifying_values_never_reach_the_metadata(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    for number in range(2):
        write_radiograph(folder / f"{number}.dcm", windows=[(2048, 4096, "FULL")])
    data, metadata = read_xray_with_metadata(folder)
    text = json.dumps(metadata, default=str)
    for keyword, value in IDENTIFYING_VALUES.items():
        assert value not in text, keyword
    assert "SeriesInstanceUID" in metadata["identifying_attributes"]
    assert set(IDENTIFYING_VALUES) <= set(metadata["identifying_attributes"])
    assert str(pydicom.dcmread(folder / "0.dcm").SeriesInstanceUID) not in text


def test_deidentify_writes_a_copy_without_identifying_values(tmp_path):
    import napari_xray as nx

    folder = tmp_path / "study"
    (folder / "series").mkdir(parents=True)
    series = pydicom.uid.generate_uid()
    sources = [write_radiograph(folder / "series" / f"{n}.dcm", windows=[(2048, 4096, "FULL")],
                                spacing={"PixelSpacing": (0.2, 0.2)}, burned_in="NO",
                                series_uid=series) for n in range(2)]
    before = [p.read_bytes() for p in sources]
    written = nx.deidentify(folder, tmp_path / "clean", seed="fixed")
    assert written == [tmp_path / "clean" / "series" / f"{n}.dcm" for n in range(2)]
    assert [p.read_bytes() for p in sources] == before  # the inputs are untouched
    for source, copy in zip(sources, written, strict=True):
        content = copy.read_bytes()
        for keyword, value in IDENTIFYING_VALUES.items():
            assert value.encode() not in content, keyword
        original, clean = pydicom.dcmread(source), pydicom.dcmread(copy)
        assert clean.PatientIdentityRemoved == "YES"
        assert clean.SeriesInstanceUID != original.SeriesInstanceUID
        np.testing.assert_array_equal(clean.pixel_array, original.pixel_array)
    # One mapping per call: the two files stay one series.
    assert {pydicom.dcmread(p).SeriesInstanceUID for p in written} - {series} != set()
    assert len({pydicom.dcmread(p).SeriesInstanceUID for p in written}) == 1
    data, metadata = read_xray_with_metadata(tmp_path / "clean" / "series")
    assert metadata["identity_removed"] is True and metadata["windows"][0]["name"] == "FULL"
    np.testing.assert_array_equal(data, read_xray_with_metadata(folder / "series")[0])
    assert read_xray_with_metadata(folder / "series")[1]["identity_removed"] is False
    # The same seed, the same copy.
    again = nx.deidentify(sources[0], tmp_path / "again.dcm", seed="fixed")
    assert again[0].read_bytes() == written[0].read_bytes()
    # Text burned into the pixels is not searched: without BurnedInAnnotation NO the
    # copy never claims that the identity is removed.
    unknown = write_radiograph(tmp_path / "unknown.dcm")
    (copy,) = nx.deidentify(unknown, tmp_path / "unknown-clean.dcm")
    clean = pydicom.dcmread(copy)
    assert "PatientIdentityRemoved" not in clean and "DICOGNITO" in clean.DeidentificationMethod
    assert read_xray_with_metadata(copy)[1]["identity_removed"] is False


def test_deidentify_refuses_what_it_cannot_copy(tmp_path):
    import napari_xray as nx
    from napari_xray.errors import XrayReadError

    source = write_radiograph(tmp_path / "image.dcm")
    with pytest.raises(XrayReadError, match="is the file to de-identify"):
        nx.deidentify(source, source)
    with pytest.raises(XrayReadError, match="does not exist"):
        nx.deidentify(tmp_path / "missing.dcm", tmp_path / "out.dcm")
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(source.read_bytes()[:400])
    with pytest.raises(XrayReadError, match="damaged.dcm"):
        nx.deidentify(damaged, tmp_path / "out.dcm")
    assert not (tmp_path / "out.dcm").exists()
    assert list(tmp_path.glob(".*partial")) == []


def test_deidentified_copies_are_readable_by_others_and_never_copied_twice(tmp_path):
    import os
    import stat

    import napari_xray as nx

    folder = tmp_path / "study"
    folder.mkdir()
    source = write_radiograph(folder / "image.dcm")
    inside = folder / "deidentified"
    first = nx.deidentify(folder, inside)
    again = nx.deidentify(folder, inside)  # the earlier copy inside is not a source
    assert first == again == [inside / "image.dcm"]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(first[0].stat().st_mode) == 0o666 & ~mask
    existing = tmp_path / "out"
    existing.mkdir()
    assert nx.deidentify(source, existing) == [existing / "image.dcm"]
