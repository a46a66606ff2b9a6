"""``napari-xray view`` and napari's reader preferences: napari-xray is the reader
napari picks for PNG and DICOM files and folders, with no dialog and no
"napari builtins" preselected.

Every test here uses its own napari settings file (never the user's)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

import napari_xray
from napari_xray.plugin.console import is_comparing
from napari_xray.plugin.viewer import READER_PATTERNS, open_viewer
from napari_xray.plugin.widgets import CompareWidget

pytestmark = pytest.mark.viewer

DICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.fixture(autouse=True)
def settings_file(tmp_path, monkeypatch) -> Path:
    """napari's settings for this test only, saved to (and read from) a file in tmp_path."""
    import napari.settings
    from napari.settings import NapariSettings

    path = tmp_path / "napari-settings.yaml"
    monkeypatch.setattr(napari.settings, "_SETTINGS", NapariSettings(config_path=path))
    monkeypatch.setenv("NAPARI_CONFIG", str(path))  # for napari started in a subprocess
    return path


# --------------------------------------------------------------------------- the preference


def test_one_call_makes_napari_xray_the_preferred_reader(make_napari_viewer, settings_file):
    from napari.plugins.utils import get_preferred_reader
    from napari.settings import NapariSettings, get_settings

    make_napari_viewer()  # napari resets its settings for a new test viewer
    get_settings().plugins.extension2reader = {"*.tif": "napari", "*.png": "napari"}
    preferences = napari_xray.prefer_napari_xray_reader()
    assert {pattern: preferences[pattern] for pattern in READER_PATTERNS} == dict.fromkeys(
        READER_PATTERNS, "napari-xray"
    )
    assert preferences["*.tif"] == "napari", "other preferences are kept"
    assert get_preferred_reader(str(DICOM_FILES / "CT_small.dcm")) == "napari-xray"
    assert get_preferred_reader(str(DICOM_FILES)) == "napari-xray"  # a folder
    # saved as napari saves it: a new session reads the same preferences
    reloaded = NapariSettings(config_path=settings_file).plugins.extension2reader
    assert reloaded["*.png"] == "napari-xray" and reloaded["*" + os.sep] == "napari-xray"

    napari_xray.prefer_napari_xray_reader(False)
    assert get_settings().plugins.extension2reader == {"*.tif": "napari"}


def test_with_the_preference_napari_opens_the_folder_and_dicom_with_napari_xray(
    make_napari_viewer, xray_dir, xray_stack, tmp_path
):
    folder = tmp_path / "series"
    shutil.copytree(xray_dir, folder, ignore=shutil.ignore_patterns("*.csv"))
    shutil.copy(folder / "00000011_000.png", folder / ".00000011_009.png")  # hidden
    viewer = make_napari_viewer()
    napari_xray.prefer_napari_xray_reader()
    # plugin=None is what File ▸ Open passes: napari's reader preference decides
    (layer,) = viewer.open(str(folder), plugin=None)
    assert layer.data.shape == (9, 1024, 1024), "nine frames; the hidden file is no frame"
    np.testing.assert_array_equal(layer.data, xray_stack)
    (dicom,) = viewer.open(str(DICOM_FILES / "CT_small.dcm"), plugin=None)
    assert dicom.data.shape == (128, 128) and dicom.metadata["modality"] == "CT"


# --------------------------------------------------------------------------- napari-xray view


def test_view_subcommand_is_registered():
    from napari_xray import cli

    args = cli.build_parser().parse_args(["view", "frames", "--no-run"])
    assert args.run is cli.view_command and args.input == "frames" and args.no_run


def test_view_opens_the_series_with_the_compare_widget(make_napari_viewer, xray_stack):
    from napari.plugins.utils import get_preferred_reader

    viewer = make_napari_viewer()
    open_viewer(viewer=viewer)
    (layer,) = viewer.layers
    np.testing.assert_array_equal(layer.data, xray_stack)

    def compare_docks():
        return [w for w in viewer.window.dock_widgets.values() if isinstance(w, CompareWidget)]

    assert len(compare_docks()) == 1
    viewer.window.add_plugin_dock_widget("napari-xray", "Compare all")  # the menu's dock
    assert len(compare_docks()) == 1
    assert get_preferred_reader(str(DICOM_FILES / "CT_small.dcm")) == "napari-xray"


def test_view_opens_input_with_the_plugin(make_napari_viewer, xray_paths):
    viewer = make_napari_viewer()
    open_viewer(xray_paths[1], viewer=viewer, compare=True)
    assert viewer.layers[0].data.shape == (1024, 1024)
    assert is_comparing(viewer)


def test_view_falls_back_to_the_phantom(make_napari_viewer, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("NAPARI_XRAY_DATA_DIR", str(tmp_path / "no-frames-here"))
    viewer = make_napari_viewer()
    open_viewer(viewer=viewer)
    assert [layer.name for layer in viewer.layers] == ["synthetic phantom"]
    assert "phantom" in capsys.readouterr().err


def test_view_missing_input_fails_before_any_window(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_viewer(tmp_path / "missing.png")


@pytest.mark.slow
def test_view_command_line_end_to_end(xray_dir, settings_file):
    script = Path(sys.executable).with_name("napari-xray")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "napari_xray.cli"]
    result = subprocess.run(
        [*command, "view", "--no-run"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NAPARI_XRAY_DATA_DIR": str(xray_dir)},
    )
    assert result.returncode == 0, result.stderr
    assert "napari-xray" in settings_file.read_text(), "view set the reader preference"
