"""The headless main job: ``napari-xray compare [INPUT …] --out DIR``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from napari_xray import compare
from napari_xray.cli import main

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
    assert len(csv_lines) == 11

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


def test_compare_falls_back_to_the_phantom_with_a_notice(tmp_path, monkeypatch, capsys):
    empty_mirror = tmp_path / "no-frames-here"
    empty_mirror.mkdir()
    monkeypatch.setenv("NAPARI_XRAY_DATA_DIR", str(empty_mirror))
    out = tmp_path / "out"
    assert main(["compare", "--out", str(out)]) == 0
    assert "phantom" in capsys.readouterr().err
    rows = json.loads((out / "statistics.json").read_text())
    assert rows[0]["frame"] == "phantom_000" and len(rows) == 10


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
