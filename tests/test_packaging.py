"""The built wheel: napari.yaml and the sample registry inside it, npe2 accepts it.

The manifest and the registry live at the repository's top level; the package
holds symlinks to them, which the wheel build turns into real files. The wheel is
installed into a fresh virtual environment that borrows this environment's
dependencies (a ``.pth`` line, which does not pull in the editable install), so
nothing but the build backend is downloaded.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
IN_WHEEL = {
    "napari_xray/napari.yaml": REPO_ROOT / "napari.yaml",
    "napari_xray/sample_data/registry.json": REPO_ROOT / "sample_data" / "registry.json",
    "napari_xray/sample_data/Data_Entry_2017_patient11.csv":
        REPO_ROOT / "sample_data" / "Data_Entry_2017_patient11.csv",
}

pytestmark = pytest.mark.slow


def _run(*args: str | os.PathLike, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [os.fspath(a) for a in args], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", REPO_ROOT, "--no-deps", "-q", "-w", out)
    (built,) = out.glob("napari_xray-*.whl")
    return built


def test_the_wheel_holds_the_manifest_and_the_registry_as_files(wheel):
    with zipfile.ZipFile(wheel) as archive:
        for name, original in IN_WHEEL.items():
            mode = archive.getinfo(name).external_attr >> 16
            assert not stat.S_ISLNK(mode), f"{name} is a symlink in the wheel"
            assert archive.read(name) == original.read_bytes()
        entry_points = archive.read(
            next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    assert "napari-xray = napari_xray:napari.yaml" in entry_points


def test_npe2_validates_the_installed_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    )
    _run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-index",
        "-q",
        "--target",
        site,
        wheel,
    )
    # This environment's dependencies, without its .pth files (so not the editable install).
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    code = (
        "import json, importlib.metadata, importlib.resources, napari_xray\n"
        "from napari_xray import samples\n"
        "package = importlib.resources.files('napari_xray')\n"
        "print(json.dumps({\n"
        "    'package': napari_xray.__file__,\n"
        "    'distribution': str(importlib.metadata.distribution('napari-xray')._path),\n"
        "    'manifest_is_file': (package / 'napari.yaml').is_file(),\n"
        "    'registry_files': sorted(samples._registry()['files']),\n"
        "}))\n"
    )
    found = json.loads(_run(python, "-c", code, env=env))
    assert Path(found["package"]).is_relative_to(site), found
    assert Path(found["distribution"]).is_relative_to(site), found
    assert found["manifest_is_file"]
    registry = json.loads(IN_WHEEL["napari_xray/sample_data/registry.json"].read_text())
    assert found["registry_files"] == sorted(registry["files"])

    out = _run(
        python,
        "-c",
        "import sys; from npe2.cli import main; sys.exit(main())",
        "validate",
        "napari-xray",
        "--imports",
        env=env,
    )
    assert "Manifest for 'napari-xray' valid!" in out
