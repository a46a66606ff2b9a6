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


def test_a_batch_with_failed_frames_exits_3_and_lists_them(monkeypatch, capsys):
    from napari_xray.batch import run
    from napari_xray.batch.report import BatchSummary

    def finished_with_failures(*args, **kwargs):
        return BatchSummary(store="s.zarr", n_frames=3, processed=3, ok=1, failures=[
            {"index": 0, "file": "a.png", "reason": "a.png is truncated"},
            {"index": 2, "file": "c.png", "reason": "wrong size: c.png is 8×8"},
        ])

    monkeypatch.setattr(run, "run_batch", finished_with_failures)
    assert cli.main(["batch", "x.png", "--out", "s.zarr"]) == cli.EXIT_FAILED_FRAMES == 3
    captured = capsys.readouterr()
    assert "processed 3 of 3 frames" in captured.out and "1 ok, 2 failed" in captured.out
    assert captured.err.splitlines() == ["failed: a.png: a.png is truncated",
                                         "failed: c.png: wrong size: c.png is 8×8"]


def test_an_interrupt_with_a_message_is_still_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt("2 of 5 frames are done; rerun the same command to finish it")

    monkeypatch.setattr(cli, "batch_command", interrupted)
    assert cli.main(["batch", "x.png", "--out", "s.zarr"]) == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err == (
        "napari-xray: interrupted: 2 of 5 frames are done; rerun the same command to finish it\n")


def test_main_hands_back_the_interrupt_handler_it_replaced(monkeypatch):
    import signal

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(cli, "compare_command", lambda args: 0)
    assert cli.main(["compare", "--out", "unused"]) == 0
    assert signal.getsignal(signal.SIGINT) is before


# A command that gets Ctrl-C inside a finalizer, then works for two seconds.
_CTRL_C_IN_A_FINALIZER = """
import os, signal, sys, threading, time
from napari_xray import cli

class Finalized:
    def __del__(self):
        {finalizer}

def report(unraisable):  # the hook the command line found installed
    {report}

def command(args):
    {drop}
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        pass
    print("not interrupted")
    return 0

sys.unraisablehook = report
cli.compare_command = command
sys.exit(cli.main(["compare", "--out", "unused"]))
"""
_SIGINT = "os.kill(os.getpid(), signal.SIGINT); time.sleep(0.01)"


@pytest.mark.parametrize(
    ("finalizer", "report", "drop", "stderr"),
    [
        # Its handler runs inside the finalizer, which Python reports and goes on.
        (_SIGINT, "print('reported', file=sys.stderr)", "Finalized()", ""),
        # A finalizer raised something else; Ctrl-C comes while that is being reported.
        ("raise ValueError('finalizer failed')", f"{_SIGINT}; print('reported', file=sys.stderr)",
         "Finalized()", "reported\n"),
        # A finalizer in another thread raised it.
        ("raise KeyboardInterrupt", "print('reported', file=sys.stderr)",
         "threading.Thread(target=Finalized).start()", ""),
    ],
    ids=["in-a-finalizer", "while-reporting-a-finalizer-error", "finalizer-in-a-thread"],
)
def test_ctrl_c_inside_a_finalizer_still_ends_the_command(finalizer, report, drop, stderr):
    code = _CTRL_C_IN_A_FINALIZER.format(finalizer=finalizer, report=report, drop=drop)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout == ""  # the command did not run to its end
    assert result.returncode == cli.EXIT_INTERRUPTED, result.stderr
    assert result.stderr == f"{stderr}napari-xray: interrupted\n"


def test_ctrl_c_in_a_finalizer_as_the_command_returns_is_no_traceback():
    code = _CTRL_C_IN_A_FINALIZER.replace(
        '''    {drop}
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        pass
    print("not interrupted")
    return 0''', '''    kept = Finalized()  # finalized as this frame ends, after the command's work
    print("done")
    return 0''').format(finalizer=_SIGINT, report="print('reported', file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout == "done\n" and "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, cli.EXIT_INTERRUPTED), result.stderr
