"""The ``napari-xray`` command line itself: cheap help, one subcommand each, exit statuses."""

from __future__ import annotations

import subprocess
import sys

import pytest

from napari_xray import cli
from napari_xray.errors import XrayError


def test_help_loads_neither_the_engine_nor_napari():
    code = (
        "import sys\n"
        "from napari_xray.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'numpy', 'cv2', 'scipy', 'dask', 'zarr', 'napari', 'qtpy'}\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in heavy or m.startswith('napari_xray.engine')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "compare" in out.stdout and "batch" in out.stdout and "view" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_python_m_napari_xray_is_the_same_command_line():
    out = subprocess.run([sys.executable, "-m", "napari_xray", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("napari-xray ")


@pytest.mark.parametrize(
    ("raised", "status", "message"),
    [
        (XrayError("frames.png is truncated; download it again"), cli.EXIT_USAGE,
         "napari-xray compare: error: frames.png is truncated"),
        (FileNotFoundError("out/ cannot be written"), cli.EXIT_USAGE, "cannot be written"),
        (KeyboardInterrupt(), cli.EXIT_INTERRUPTED, "napari-xray: interrupted"),
    ],
)
def test_errors_become_one_line_and_an_exit_status(monkeypatch, capsys, raised, status,
                                                    message):
    def fail(args):
        raise raised

    monkeypatch.setattr(cli, "compare_command", fail)
    assert cli.main(["compare", "--out", "unused"]) == status
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
