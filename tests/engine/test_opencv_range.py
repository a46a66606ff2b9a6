"""The engine runs on the OpenCV it was asked to run on, inside the range the package allows."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
from packaging.specifiers import SpecifierSet
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _allowed_opencv() -> SpecifierSet:
    match = re.search(r'"opencv-python-headless([^"]*)"', PYPROJECT.read_text(encoding="utf-8"))
    assert match, "pyproject.toml names no opencv-python-headless range"
    return SpecifierSet(match.group(1))


def test_opencv_is_the_requested_version_and_in_the_allowed_range(request):
    version = Version(cv2.__version__)
    requested = request.config.getoption("--opencv-version")
    if requested is not None:
        assert cv2.__version__ == requested, f"OpenCV {cv2.__version__} from {cv2.__file__}"
    assert version in _allowed_opencv(), f"OpenCV {version} is outside {_allowed_opencv()}"
