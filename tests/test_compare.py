"""The headless main job: ``napari-xray compare [INPUT …] --out DIR``."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from napari_xray import compare
from napari_xray.cli import main
from napari_xray.samples import FRAME_NAMES

TUTORIAL_FIGURES = {"min": 0, "max": 255, "mean": 172.52233219146729, "median": 195.0}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


@pytest.mark.realdata
def test_compare_on_the_default_series_writes_every_output(xray_stack, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["compare", "--out", str(out), "--frame", "1", "--gif-duration", "0.25"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(compare.OUTPUT_FILES)
    assert _leftovers(tmp_path) == []

    figure = np.asarray(Image.open(out / "comparison.png").convert("L"))
    assert figure.shape[0] > 800 and figure.shape[1] > 800
    assert figure.std() > 20  # panels, not a blank canvas

    gif = iio.imread(out / "stack.gif", index=None)
    assert gif.shape[0] == 9
    gray = gif[..., 0] if gif.ndim == 4 else gif
    span = xray_stack.max(axis=(1, 2), keepdims=True) - xray_stack.min(axis=(1, 2), keepdims=True)
    expected = np.rint(255.0 * (xray_stack - xray_stack.min(axis=(1, 2), keepdims=True)) / span)
    assert np.abs(gray.astype(int) - expected.astype(int)).max() <= 1
    assert iio.immeta(out / "stack.gif", index=0).get("duration") == 250

    rows = json.loads((out / "statistics.json").read_text())
    assert [row["frame"] for row in rows] == [f"00000011_{i:03d}.png" for i in range(9)] + ["all"]
    frame_001 = rows[1]
    assert frame_001["dtype"] == "uint8"
    for key, value in TUTORIAL_FIGURES.items():
        assert frame_001[key] == value, key
    assert rows[-1]["mean"] == pytest.approx(float(np.mean(xray_stack)), rel=1e-12)
    assert rows[-1]["std"] == pytest.approx(float(np.std(xray_stack)), rel=1e-12)
    csv_lines = (out / "statistics.csv").read_text().strip().splitlines()
    assert csv_lines[0].startswith("frame,dtype,shape")
    assert csv_lines[0].endswith(",findings,view")
    assert len(csv_lines) == 11
    # The findings and views of the data set's entry file (its nine rows ship with
    # the package): 000 Effusion, 005 Infiltration (AP), 006 Atelectasis, 007 Infiltration.
    assert [(row["findings"], row["view"]) for row in rows] == [
        ("Effusion", "PA"), ("No Finding", "PA"), ("No Finding", "PA"), ("No Finding", "PA"),
        ("No Finding", "PA"), ("Infiltration", "AP"), ("Atelectasis", "PA"),
        ("Infiltration", "PA"), ("No Finding", "PA"), ("", "")]
    title = Image.open(out / "comparison.png").text["Title"]
    assert title == "ChestX-ray8 series (00000011) — frame 00000011_001.png — No Finding; PA view"

    histogram = np.asarray(Image.open(out / "histogram.png").convert("L"))
    assert histogram.std() > 10
    assert "wrote" in capsys.readouterr().out


def test_run_comparison_matches_the_engine_and_shares_sobel():
    stack = np.random.default_rng(0).integers(0, 256, (2, 40, 48), dtype=np.uint8)
    results = compare.run_comparison(stack)
    from napari_xray.engine.operations import get_operation

    by_title = {panel.title: (panel, result) for panel, result in results}
    assert by_title["Original"][1] is stack
    for panel, result in results:
        if panel.key is not None:
            np.testing.assert_array_equal(result, get_operation(panel.key)(stack, **panel.params))
    assert by_title["Sobel"][1] is by_title["Sobel (hot)"][1]


def test_without_a_configured_source_the_phantom_comes_with_a_notice_quiet_or_not(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("NAPARI_XRAY_DATA_DIR", raising=False)
    monkeypatch.setenv("NAPARI_XRAY_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("NAPARI_XRAY_BASE_URL", "http://127.0.0.1:9/")  # nothing listens
    out = tmp_path / "out"
    assert main(["compare", "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "synthetic chest phantom" in captured.err and "NAPARI_XRAY_DATA_DIR" in captured.err
    assert captured.out == ""
    rows = json.loads((out / "statistics.json").read_text())
    assert rows[0]["frame"] == "phantom_000" and len(rows) == 10
    assert {(row["findings"], row["view"]) for row in rows} == {("", "")}  # no entry rows


def _mirror_with(tmp_path: Path, xray_dir: Path, change) -> Path:
    """A copy of the nine-frame mirror folder, then ``change(folder)`` applied to it."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in FRAME_NAMES:
        shutil.copyfile(xray_dir / name, mirror / name)
    change(mirror)
    return mirror


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: (d / "00000011_004.png").unlink(), "00000011_004.png is missing"),
        (lambda d: _flip_one_byte(d / "00000011_006.png"), "00000011_006.png does not match"),
    ],
    ids=["missing-frame", "corrupted-frame"],
)
@pytest.mark.parametrize("quiet", [[], ["--quiet"]], ids=["verbose", "quiet"])
def test_a_configured_mirror_missing_or_corrupt_is_an_error_never_the_phantom(
    tmp_path, monkeypatch, capsys, xray_dir, change, message, quiet
):
    mirror = _mirror_with(tmp_path, xray_dir, change)
    monkeypatch.setenv("NAPARI_XRAY_DATA_DIR", str(mirror))
    out = tmp_path / "out"
    assert main(["compare", "--out", str(out), *quiet]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert "phantom" not in err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_compare_on_given_files(tmp_path):
    frames = np.random.default_rng(1).integers(0, 256, (3, 64, 80), dtype=np.uint8)
    folder = tmp_path / "input"
    folder.mkdir()
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"img_{index + 1}.png")
    out = tmp_path / "out"
    assert main(["compare", str(folder), "--out", str(out), "--quiet"]) == 0
    rows = json.loads((out / "statistics.json").read_text())
    assert [row["frame"] for row in rows] == ["img_1.png", "img_2.png", "img_3.png", "all"]
    assert rows[1]["mean"] == float(np.mean(frames[1]))


@pytest.mark.parametrize(
    ("make_input", "extra", "message"),
    [
        (lambda d: d / "missing.png", [], "missing.png"),
        (lambda d: _truncated_png(d), [], "truncated.png"),
        (lambda d: _text_as_png(d), [], "notes.png"),
        (lambda d: _good_png(d), ["--frame", "7"], "--frame 7 is out of range"),
        (lambda d: _good_png(d), ["--gif-duration", "0"], "--gif-duration"),
    ],
)
def test_bad_input_is_one_line_error_and_nothing_is_written(
    tmp_path, capsys, make_input, extra, message
):
    source = tmp_path / "in"
    source.mkdir()
    path = make_input(source)
    out = tmp_path / "out"
    status = main(["compare", str(path), "--out", str(out), *extra])
    assert status != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_a_failure_while_writing_leaves_the_old_results_untouched(tmp_path, monkeypatch):
    frames = np.random.default_rng(2).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    out = tmp_path / "out"
    out.mkdir()
    (out / "statistics.json").write_text("old results\n")
    (out / "keep-me.txt").write_text("user file\n")

    def broken_gif(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(compare, "save_gif", broken_gif)
    comparison = compare.ComparisonInput(frames, ["a", "b"], "test")
    with pytest.raises(OSError, match="disk full"):
        compare.write_comparison(comparison, out)
    assert sorted(p.name for p in out.iterdir()) == ["keep-me.txt", "statistics.json"]
    assert (out / "statistics.json").read_text() == "old results\n"
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_console_script_runs_the_main_job(tmp_path):
    executable = shutil.which("napari-xray", path=str(Path(sys.executable).parent))
    assert executable, "the napari-xray console script is not installed"
    frames = np.random.default_rng(3).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"f{index}.png")
    out = tmp_path / "out"
    result = subprocess.run(
        [
            executable,
            "compare",
            str(tmp_path / "f0.png"),
            str(tmp_path / "f1.png"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr
    assert (out / "comparison.png").stat().st_size > 0


def _good_png(folder: Path) -> Path:
    path = folder / "good.png"
    Image.fromarray(np.full((32, 32), 100, np.uint8)).save(path)
    return path


def _truncated_png(folder: Path) -> Path:
    source = _good_png(folder)
    noisy = np.random.default_rng(4).integers(0, 256, (256, 256), dtype=np.uint8)
    Image.fromarray(noisy).save(source)
    data = source.read_bytes()
    path = folder / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    return path


def _text_as_png(folder: Path) -> Path:
    path = folder / "notes.png"
    path.write_text("this is not an image\n")
    return path


# --------------------------------------------------------------------------------------
# the output folder is replaced as a whole
# --------------------------------------------------------------------------------------

SLOW_STEPS = Path(__file__).with_name("compare_with_slow_steps.py")


def _write_inputs(folder: Path, seed: int, count: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    frames = np.random.default_rng(seed).integers(0, 256, (count, 40, 48), dtype=np.uint8)
    paths = []
    for index, frame in enumerate(frames):
        path = folder / f"f{index}.png"
        Image.fromarray(frame).save(path)
        paths.append(path)
    return paths


def _output_set(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in compare.OUTPUT_FILES
            if (folder / name).exists()}


def _compare_cli(*args) -> subprocess.Popen:
    """``python ARGS…`` in its own process group (a script and its arguments)."""
    return subprocess.Popen(
        [sys.executable, *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.slow
def test_a_kill_at_any_step_leaves_the_complete_old_or_new_set(tmp_path):
    old_inputs = _write_inputs(tmp_path / "old", seed=10)
    new_inputs = _write_inputs(tmp_path / "new", seed=11, count=3)
    out = tmp_path / "parent" / "out"
    reference = tmp_path / "reference"
    assert main(["compare", *map(str, new_inputs), "--out", str(reference), "--quiet"]) == 0
    new_set = _output_set(reference)

    def fresh_old_set() -> dict[str, bytes]:
        shutil.rmtree(out, ignore_errors=True)
        assert main(["compare", *map(str, old_inputs), "--out", str(out), "--quiet"]) == 0
        (out / "keep-me.txt").write_text("user file\n")
        return _output_set(out)

    old_set = fresh_old_set()
    assert old_set != new_set
    command = [SLOW_STEPS, "0.4", "compare", *new_inputs, "--out", out, "--quiet"]
    # A whole slow run shows how many steps touch the folder.
    whole = _compare_cli(*command)
    _, err = whole.communicate(timeout=120)
    assert whole.returncode == 0, err
    steps = [line for line in err.splitlines() if line.startswith("step ")]
    assert steps, err
    assert _output_set(out) == new_set

    for kill_before in range(1, len(steps) + 1):
        old_set = fresh_old_set()
        process = _compare_cli(*command)
        seen = 0
        while seen < kill_before:
            line = process.stderr.readline()
            assert line, f"the run ended before step {kill_before}"
            seen += line.startswith("step ")
        os.killpg(process.pid, signal.SIGKILL)  # while step `kill_before` sleeps
        process.communicate(timeout=60)
        found = _output_set(out)
        assert found in (old_set, new_set), (
            f"killed before step {kill_before} ({steps[kill_before - 1]}): a mixed set "
            f"{sorted(name for name in found if found[name] == new_set.get(name))} new, "
            f"the rest old"
        )
        assert (out / "keep-me.txt").read_text() == "user file\n"

    # The next run removes what the killed runs left beside the folder.
    assert main(["compare", *map(str, new_inputs), "--out", str(out), "--quiet"]) == 0
    assert _output_set(out) == new_set
    assert _leftovers(out.parent) == []


def test_stale_staging_folders_are_removed_and_live_ones_kept(tmp_path):
    out = tmp_path / "out"
    host = compare._HOST
    dead = _dead_pid()
    stale = [
        tmp_path / f".out.compare-staging-{host}-{dead}-0123abcd",
        tmp_path / f".out.compare-old-{host}-{dead}-89abcdef",
        out / f".napari-xray-compare-staging-{host}-{dead}-00ff00ff",
    ]
    live = tmp_path / f".out.compare-staging-{host}-{os.getpid()}-aaaaaaaa"
    elsewhere_old = tmp_path / f".out.compare-staging-otherhost-{os.getpid()}-bbbbbbbb"
    elsewhere_new = tmp_path / f".out.compare-staging-otherhost-{dead}-cccccccc"
    unrelated = [tmp_path / ".out.backup", tmp_path / f".other.compare-staging-{host}-{dead}-"
                 "0123abcd", tmp_path / ".out.q1w2e3r4"]
    for folder in [*stale, live, elsewhere_old, elsewhere_new, *unrelated]:
        folder.mkdir(parents=True)
        (folder / "statistics.json").write_text("{}")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(elsewhere_old, (two_hours_ago, two_hours_ago))

    frames = np.random.default_rng(5).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    compare.write_comparison(compare.ComparisonInput(frames, ["a", "b"], "test"), out)

    for folder in [*stale, elsewhere_old]:
        assert not folder.exists(), folder.name
    for folder in [live, elsewhere_new, *unrelated]:
        assert folder.exists(), folder.name
    assert sorted(p.name for p in out.iterdir()) == sorted(compare.OUTPUT_FILES)


def test_an_old_set_left_without_its_folder_is_put_back(tmp_path):
    out = tmp_path / "out"
    old = tmp_path / f".out.compare-old-{compare._HOST}-{_dead_pid()}-0123abcd"
    old.mkdir()
    (old / "statistics.json").write_text("old results\n")
    assert compare.remove_stale_staging(out) == [old]
    assert (out / "statistics.json").read_text() == "old results\n" and not old.exists()


@pytest.mark.parametrize("exchange", [True, False], ids=["atomic-exchange", "two-renames"])
def test_other_files_in_the_folder_are_kept(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(compare, "_exchange", lambda a, b: False)
    frames = np.random.default_rng(6).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    out = tmp_path / "out"
    out.mkdir()
    (out / "statistics.json").write_text("old results\n")
    (out / "notes.txt").write_text("mine\n")
    (out / "sub").mkdir()
    (out / "sub" / "deep.txt").write_text("also mine\n")
    compare.write_comparison(compare.ComparisonInput(frames, ["a", "b"], "test"), out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*compare.OUTPUT_FILES, "notes.txt", "sub"])
    assert (out / "notes.txt").read_text() == "mine\n"
    assert (out / "sub" / "deep.txt").read_text() == "also mine\n"
    assert json.loads((out / "statistics.json").read_text())[0]["frame"] == "a"
    assert _leftovers(tmp_path) == []


def test_a_folder_that_cannot_be_swapped_gets_its_files_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "_can_swap", lambda out_dir: False)  # e.g. a mount point
    frames = np.random.default_rng(7).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    out = tmp_path / "out"
    compare.write_comparison(compare.ComparisonInput(frames, ["a", "b"], "test"), out)
    assert sorted(p.name for p in out.iterdir()) == sorted(compare.OUTPUT_FILES)
    assert _leftovers(tmp_path) == [] and _leftovers(out) == []


# --------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------

# Reports when main() is about to run, so the test can interrupt it at known moments.
_READY_THEN_MAIN = (
    "import sys, napari_xray.cli as cli\n"
    "sys.stderr.write('ready\\n'); sys.stderr.flush()\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


def _interrupt_after_ready(command: list[str], delay: float) -> tuple[int, str, str]:
    """Start ``main(command)`` in a child, send SIGINT ``delay`` s after it reports ready.

    Returns the exit status, stdout and stderr (without the "ready" line).

    A SIGINT that lands between the report and the call of ``main`` (a few
    microseconds the test cannot control, more on a busy machine) is retried a
    millisecond later: its traceback shows no napari-xray frame.
    """
    for attempt in range(10):
        process = subprocess.Popen(
            [sys.executable, "-c", _READY_THEN_MAIN, *command],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        assert process.stderr.readline() == "ready\n"
        time.sleep(delay + 0.001 * attempt)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, err = process.communicate(timeout=120)
        before_main = "Traceback" in err and "napari_xray" not in err
        if not before_main:
            return process.returncode, out, err
    raise AssertionError(f"every SIGINT landed before main() started: {err}")


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.2, 0.6])
def test_ctrl_c_early_exits_130_with_one_line(tmp_path, delay):
    inputs = _write_inputs(tmp_path / "in", seed=12)
    status, _, err = _interrupt_after_ready(
        ["compare", *map(str, inputs), "--out", str(tmp_path / "out"), "--quiet"], delay)
    assert status == 130, err
    assert err == "napari-xray: interrupted\n", err
    assert not (tmp_path / "out").exists()


def test_ctrl_c_ignored_by_the_parent_stays_ignored(monkeypatch):
    from napari_xray import cli

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        monkeypatch.setattr(cli, "compare_command",
                            lambda args: signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
        assert main(["compare", "--out", "unused"]) == 1  # True: still ignored
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_current_folder_as_out_is_never_swapped_away(tmp_path, monkeypatch):
    frames = np.random.default_rng(8).integers(0, 256, (2, 32, 32), dtype=np.uint8)
    out = tmp_path / "here"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(out)
    inode = os.stat(out).st_ino
    compare.write_comparison(compare.ComparisonInput(frames, ["a", "b"], "test"), ".")
    assert os.stat(out).st_ino == inode  # the same folder, its files replaced
    assert sorted(p.name for p in out.iterdir()) == sorted([*compare.OUTPUT_FILES, "notes.txt"])
    assert _leftovers(tmp_path) == [] and _leftovers(out) == []


@pytest.mark.realdata
def test_compare_with_a_line_writes_every_panels_profile(xray_stack, tmp_path, capsys):
    from scipy import ndimage
    from skimage.measure import profile_line

    from napari_xray.engine.operations import COMPARISON

    out = tmp_path / "results"
    line = (100.0, 100.0, 900.0, 700.0)
    assert main(["compare", "--out", str(out), "--frame", "1", "--quiet",
                 "--line", ",".join(f"{v:g}" for v in line)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*compare.OUTPUT_FILES, *compare.PROFILE_FILES])
    with open(out / "profile.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    header, values = rows[0], np.array(rows[1:], dtype=np.float64)
    assert header == ["distance_mm", *(panel.title for panel in COMPARISON)]
    frame = xray_stack[1].astype(np.float64)
    start, end = line[:2], line[2:]
    np.testing.assert_allclose(values[:, 1], profile_line(frame, start, end), atol=1e-9)
    log_panel = next(i for i, p in enumerate(COMPARISON) if p.key == "log")
    reference = ndimage.gaussian_laplace(frame, COMPARISON[log_panel].params["sigma"])
    expected = profile_line(reference, start, end)
    span = np.ptp(reference)
    assert np.abs(values[:, 1 + log_panel] - expected).max() <= 1e-4 * span
    # 00000011_001's pixels: 0.336 mm down, 0.168 × 2500 / 1024 mm across.
    assert values[-1, 0] == pytest.approx(np.hypot(800 * 0.336, 600 * 0.168 * 2500 / 1024))
    assert Image.open(out / "profile.png").text["Title"].endswith("line 100, 100, 900, 700")

    # Without --line the next set has no profile: never a stale one.
    assert main(["compare", "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(compare.OUTPUT_FILES)
    capsys.readouterr()
    assert main(["compare", "--out", str(tmp_path / "other"), "--line", "1,2,3"]) == 2
    assert "pass four numbers Y0,X0,Y1,X1" in capsys.readouterr().err
    assert main(["compare", "--out", str(tmp_path / "other"), "--line=-5,0,1e7,1e7"]) == 2
    assert "ends off the 1024×1024 frame" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


# --------------------------------------------------------------------------- explain


@pytest.mark.realdata
def test_explain_writes_the_four_pairs_with_the_captions_figures(tmp_path, xray_stack):
    from PIL import Image
    from scipy import ndimage

    out = tmp_path / "explained"
    run = subprocess.run([sys.executable, "-m", "napari_xray", "explain", "--out", str(out),
                          "--frame", "1"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    names = ["explain-1-wraparound.png", "explain-2-fourier.png", "explain-3-stack.png",
             "explain-4-canny.png", "explain.png", "explain.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for name in names[:4]:
        with Image.open(out / name) as picture:
            assert picture.size == (1300, 520) and "frame 1" in picture.text["Title"]
    summary = json.loads((out / "explain.json").read_text(encoding="utf-8"))
    assert summary["frame"] == 1 and [p["key"] for p in summary["pairs"]] == [
        "wraparound", "fourier", "stack", "canny"]
    # The caption's figure, recomputed here from SciPy in float64.
    frame = xray_stack[1].astype(np.float64)
    wrapped = np.zeros(frame.shape, bool)
    for axis in (0, 1):
        derivative = ndimage.sobel(frame, axis=axis)
        wrapped |= (derivative < 0) | (derivative > 255)
    first = summary["pairs"][0]
    assert first["figures"]["wrapped_fraction"] == pytest.approx(wrapped.mean())
    assert f"{wrapped.mean():.0%} of this frame's pixels" in first["caption"][0]
    assert summary["pairs"][2]["figures"]["frames"] == 9


def test_explain_on_the_phantom_and_a_single_frame_and_bad_frames(tmp_path):
    import imageio.v3 as iio

    from napari_xray.phantom import make_phantom

    phantom = make_phantom()
    folder = tmp_path / "phantom"
    folder.mkdir()
    for index, frame in enumerate(phantom[:3]):
        iio.imwrite(folder / f"phantom_{index:03d}.png", frame)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "napari_xray", "explain", str(folder),
                          "--out", str(out), "--quiet"], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0 and run.stdout == "", run.stderr
    summary = json.loads((out / "explain.json").read_text(encoding="utf-8"))
    assert all(pair["shown"] for pair in summary["pairs"])
    assert summary["pairs"][2]["figures"]["frames"] == 3

    single = out  # the same folder: the stack pair's figure of the run before must go
    assert (single / "explain-3-stack.png").exists()
    run = subprocess.run([sys.executable, "-m", "napari_xray", "explain",
                          str(folder / "phantom_000.png"), "--out", str(single)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert not (single / "explain-3-stack.png").exists()
    summary = json.loads((single / "explain.json").read_text(encoding="utf-8"))
    assert [pair["shown"] for pair in summary["pairs"]] == [True, True, False, True]

    run = subprocess.run([sys.executable, "-m", "napari_xray", "explain", str(folder),
                          "--out", str(tmp_path / "never"), "--frame", "3"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 2 and "--frame 3 is out of range" in run.stderr
    assert not (tmp_path / "never").exists()
