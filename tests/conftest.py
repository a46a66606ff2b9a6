"""Shared fixtures: where the nine real ChestX-ray8 frames are, and how to get them.

The frames are never part of the repository. Tests read them from the folder
named by ``NAPARI_XRAY_DATA_DIR`` or, by default, from ``../shared/xray`` beside
the repository; when that folder lacks them they are downloaded (hash-checked) into
the user cache, as the plugin itself does. If neither works the tests that need
them fail: a skipped core test would check nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FRAMES_DIR = REPO_ROOT.parent / "shared" / "xray"
FRAME_NAMES = [f"00000011_{i:03d}.png" for i in range(9)]


def pytest_addoption(parser):
    parser.addoption(
        "--opencv-version",
        default=None,
        help="fail unless the OpenCV in use has this version (scripts/test.sh tests both ends "
        "of the range pyproject.toml allows)",
    )


def _frames_dir() -> Path:
    configured = os.environ.get("NAPARI_XRAY_DATA_DIR")
    return Path(configured) if configured else DEFAULT_FRAMES_DIR


def _frames_missing_message(folder: Path) -> str:
    return (
        f"the nine ChestX-ray8 frames are not in {folder}; set NAPARI_XRAY_DATA_DIR "
        "to a folder holding 00000011_000.png … 00000011_008.png"
    )


@pytest.fixture(scope="session", autouse=True)
def _point_plugin_at_mirror():
    """Make the plugin read the real frames from the mirror folder, never the network."""
    folder = _frames_dir()
    previous = os.environ.get("NAPARI_XRAY_DATA_DIR")
    if all((folder / name).exists() for name in FRAME_NAMES):
        os.environ["NAPARI_XRAY_DATA_DIR"] = str(folder)
    yield
    if previous is None:
        os.environ.pop("NAPARI_XRAY_DATA_DIR", None)
    else:
        os.environ["NAPARI_XRAY_DATA_DIR"] = previous


@pytest.fixture(scope="session")
def xray_dir() -> Path:
    """Folder holding the nine real frames: the mirror, else the download cache."""
    folder = _frames_dir()
    if all((folder / name).exists() for name in FRAME_NAMES):
        return folder
    from napari_xray.samples import SampleDataError, fetch_frames

    try:
        return fetch_frames()[0].parent
    except SampleDataError as error:
        pytest.fail(f"{_frames_missing_message(folder)}, and downloading them failed: {error}")


@pytest.fixture(scope="session")
def xray_paths(xray_dir) -> list[Path]:
    """The nine real frame paths, in order."""
    return [xray_dir / name for name in FRAME_NAMES]


@pytest.fixture(scope="session")
def xray_stack(xray_paths) -> np.ndarray:
    """The nine real frames as a read-only (9, 1024, 1024) uint8 array (read with Pillow)."""
    from PIL import Image

    stack = np.stack([np.asarray(Image.open(p)) for p in xray_paths])
    stack.setflags(write=False)
    return stack
