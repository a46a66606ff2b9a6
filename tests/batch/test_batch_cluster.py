"""The batch on real Dask clusters: worker processes, a separate scheduler, kill and resume.

Every test here starts real processes on 127.0.0.1 (a LocalCluster with two worker
processes, ``dask scheduler`` + ``dask worker`` executables, the ``napari-xray``
command line in a subprocess) and checks every stored frame against the engine's
result on the frame read independently with Pillow. They are marked ``slow`` but
are part of the normal test run (CI runs them).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image
from test_batch import assert_store_matches_engine, reference_frame, write_bad_files, write_frames

from napari_xray.batch.run import run_batch
from napari_xray.engine.operations import OPERATIONS
from napari_xray.io.store import STATUS_DONE, STATUS_FAILED

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SLOW_READS = Path(__file__).with_name("batch_with_slow_reads.py")
SUMMARY = re.compile(
    r"processed (?P<processed>\d+) of (?P<total>\d+) frames \((?P<already>\d+) already done\): "
    r"(?P<ok>\d+) ok, (?P<failed>\d+) failed"
)


def cli(*args, env=None, **kwargs) -> subprocess.CompletedProcess:
    """``napari-xray …`` in a subprocess (the package's own interpreter)."""
    return subprocess.run(
        [sys.executable, "-m", "napari_xray.cli", *map(str, args)],
        capture_output=True, text=True, timeout=180, env=env, **kwargs,
    )


def summary_of(output: str) -> dict[str, int]:
    match = SUMMARY.search(output)
    assert match, output
    return {k: int(v) for k, v in match.groupdict().items()}


def status_of(store: Path) -> np.ndarray:
    return zarr.open_group(str(store), mode="r")["status"][:]


def assert_same_store(a: Path, b: Path):
    """Two stores hold identical results (bit for bit) and statuses."""
    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    assert sorted(ga.array_keys()) == sorted(gb.array_keys())
    for key in ga.array_keys():
        assert ga[key].dtype == gb[key].dtype, key
        np.testing.assert_array_equal(ga[key][:], gb[key][:], err_msg=key)


def kill_group(process: subprocess.Popen, sig=signal.SIGKILL):
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------------------


def test_local_cluster_of_two_processes_matches_the_engine(tmp_path):
    good = write_frames(tmp_path / "in", 16, shape=(192, 160))
    bad = write_bad_files(tmp_path / "in", shape=(192, 160))
    inputs = [tmp_path / "in"]  # a folder: natural order, bad files among the good ones
    messages = []

    summary = run_batch(inputs, tmp_path / "out.zarr", workers=2, progress=False,
                        log=messages.append)

    assert summary.workers == 2 and summary.threads == 2 and summary.scheduler == "local"
    assert summary.processed == 21 and summary.ok == 18 and len(summary.failures) == 3
    names = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")["status"].attrs["file_names"]
    index = {name: i for i, name in enumerate(names)}
    done = {index[p.name]: p for p in [*good, bad["rgba"], bad["la"]]}
    failed = [index[bad[k].name] for k in ("truncated", "wrong_size", "not_an_image")]
    group = assert_store_matches_engine(tmp_path / "out.zarr", done, failed)
    report = group.attrs["report"]
    assert sorted(f["file"] for f in report["failures"]) == ["notes.png", "truncated.png",
                                                             "wrong_size.png"]
    assert report["done"] == 18 and report["failed"] == 3 and report["to_do"] == 0
    assert report["last_run"]["state"] == "complete"
    # the RGBA and LA frames are the grayscale Pillow gives, not a channel
    rgba = group["mask"][index["colour_rgba.png"]]
    np.testing.assert_array_equal(rgba, OPERATIONS["mask"](reference_frame(bad["rgba"])))

    again = run_batch(inputs, tmp_path / "out.zarr", workers=2, progress=False,
                      log=messages.append)
    # failed frames are retried (they are not done); done ones are not recomputed
    assert again.already_done == 18 and again.processed == 3


def test_cli_on_a_separate_dask_scheduler_and_worker(tmp_path):
    files = write_frames(tmp_path / "in", 8)
    scheduler_file = tmp_path / "scheduler.json"
    started = []
    try:
        started.append(subprocess.Popen(
            [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
             "--scheduler-file", scheduler_file],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), "dask scheduler did not start"
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        started.append(subprocess.Popen(
            [BIN / "dask", "worker", "--scheduler-file", scheduler_file, "--nthreads", "1",
             "--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))

        result = cli("batch", tmp_path / "in", "--out", tmp_path / "a.zarr",
                     "--scheduler-address", address, "--filters", "log,sobel,canny",
                     "--param", "log.sigma=1.5", "--no-progress")
        assert result.returncode == 0, result.stderr
        assert "starting a local Dask cluster" not in result.stderr
        assert summary_of(result.stdout) == {"processed": 8, "total": 8, "already": 0,
                                             "ok": 8, "failed": 0}
        assert "on 1 worker(s), 1 thread(s)" in result.stdout
        group = assert_store_matches_engine(tmp_path / "a.zarr", dict(enumerate(files)))
        assert group["log"].attrs["napari_xray"]["params"] == {"sigma": 1.5}
        assert group.attrs["report"]["last_run"]["scheduler"] == address

        # DASK_SCHEDULER_ADDRESS alone also sends the work there
        env = dict(os.environ, DASK_SCHEDULER_ADDRESS=address)
        result = cli("batch", files[0], files[1], "--out", tmp_path / "b.zarr",
                     "--filters", "gradient", "--no-progress", env=env)
        assert result.returncode == 0, result.stderr
        assert "starting a local Dask cluster" not in result.stderr
        assert_store_matches_engine(tmp_path / "b.zarr", {0: files[0], 1: files[1]})

        # … and so does --scheduler-file
        result = cli("batch", files[2], "--out", tmp_path / "c.zarr", "--filters", "mask",
                     "--scheduler-file", scheduler_file, "--no-progress")
        assert result.returncode == 0, result.stderr
        assert "starting a local Dask cluster" not in result.stderr
        assert_store_matches_engine(tmp_path / "c.zarr", {0: files[2]})
    finally:
        for process in reversed(started):
            kill_group(process, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                kill_group(process)
                process.wait(timeout=10)


def _start_slow_cli(tmp_path, inputs, store, *options, delay="0.25"):
    """``napari-xray batch`` in its own process group, every frame read ``delay`` s late."""
    return subprocess.Popen(
        [sys.executable, SLOW_READS, delay, "batch", *map(str, inputs), "--out",
         str(store), "--workers", "2", "--no-progress", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _wait_for_done(store: Path, at_least: int, process, timeout=90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if np.count_nonzero(status_of(store) == STATUS_DONE) >= at_least:
                return
        except (FileNotFoundError, KeyError, ValueError):
            pass  # the store is not created yet
        time.sleep(0.1)
    raise AssertionError(f"fewer than {at_least} frames done within {timeout} s")


def test_killed_run_resumes_to_the_clean_result(tmp_path):
    files = write_frames(tmp_path / "in", 24)
    write_bad_files(tmp_path / "bad")
    inputs = [tmp_path / "in", tmp_path / "bad" / "truncated.png"]
    store = tmp_path / "killed.zarr"

    # tasks of 4 frames: each task rewrites its status chunk after every frame
    process = _start_slow_cli(tmp_path, inputs, store, "--frames-per-task", "4")
    try:
        _wait_for_done(store, 4, process)
    finally:
        kill_group(process)  # SIGKILL the CLI, the nanny and both workers at once
        process.communicate(timeout=30)
    status = status_of(store)
    done_at_kill = int(np.count_nonzero(status == STATUS_DONE))
    assert 4 <= done_at_kill < 25, status
    assert zarr.open_group(str(store))["status"].attrs  # the store still opens

    result = cli("batch", *inputs, "--out", store, "--workers", "2", "--no-progress",
                 "--frames-per-task", "4")
    assert result.returncode == 3, result.stderr  # truncated.png failed (listed)
    assert "failed: truncated.png: " in result.stderr
    assert "did not finish" in result.stderr
    counts = summary_of(result.stdout)
    assert counts["already"] == done_at_kill
    assert counts["processed"] == 25 - done_at_kill  # only the missing frames
    assert not list(store.rglob("*.partial"))

    clean = run_batch(inputs, tmp_path / "clean.zarr", workers=2, progress=False,
                      log=lambda message: None)
    assert clean.processed == 25
    assert_same_store(store, tmp_path / "clean.zarr")
    assert_store_matches_engine(store, dict(enumerate(files)), failed=[24])
    report = zarr.open_group(str(store), mode="r").attrs["report"]
    assert [f["file"] for f in report["failures"]] == ["truncated.png"]


def test_ctrl_c_stops_cleanly_and_the_rerun_finishes(tmp_path):
    files = write_frames(tmp_path / "in", 20)
    store = tmp_path / "out.zarr"
    process = _start_slow_cli(tmp_path, [tmp_path / "in"], store, delay="0.3")
    try:
        _wait_for_done(store, 2, process)
        kill_group(process, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, err = process.communicate(timeout=60)
    finally:
        kill_group(process)
    assert process.returncode == 130, err
    assert "interrupted" in err and "rerun the same command" in err
    assert "Traceback" not in err, err
    status = status_of(store)
    done = {int(i): files[i] for i in np.flatnonzero(status == STATUS_DONE)}
    assert 2 <= len(done) < 20
    assert_store_matches_engine(store, done)  # what is marked done is right
    report = zarr.open_group(str(store), mode="r").attrs["report"]
    assert report["last_run"]["state"] == "interrupted" and report["done"] == len(done)

    result = cli("batch", tmp_path / "in", "--out", store, "--workers", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["processed"] == 20 - len(done)
    assert_store_matches_engine(store, dict(enumerate(files)))


def test_strict_stops_at_a_bad_file(tmp_path):
    files = write_frames(tmp_path / "in", 6)
    bad = write_bad_files(tmp_path / "bad")
    store = tmp_path / "out.zarr"
    result = cli("batch", tmp_path / "in", bad["truncated"], "--out", store, "--workers", "2",
                 "--strict", "--no-progress")
    assert result.returncode == 2
    assert "--strict: truncated.png" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr
    status = status_of(store)
    assert status[6] == STATUS_FAILED  # never marked done
    report = zarr.open_group(str(store), mode="r").attrs["report"]
    assert [f["file"] for f in report["failures"]] == ["truncated.png"]
    done = {int(i): files[i] for i in np.flatnonzero(status == STATUS_DONE)}
    assert_store_matches_engine(store, done)

    # without --strict the same store is finished, the bad file skipped
    result = cli("batch", tmp_path / "in", bad["truncated"], "--out", store, "--workers", "2",
                 "--no-progress")
    assert result.returncode == 3, result.stderr
    assert summary_of(result.stdout)["failed"] == 1
    assert "failed: truncated.png: " in result.stderr
    assert_store_matches_engine(store, dict(enumerate(files)), failed=[6])


@pytest.mark.realdata
def test_real_frames_plus_rgba_and_truncated(tmp_path, xray_paths):
    rgb = np.stack([reference_frame(xray_paths[1]), reference_frame(xray_paths[4]),
                    reference_frame(xray_paths[7])], axis=-1)
    rgba_path = tmp_path / "extra" / "00000099_000.png"
    rgba_path.parent.mkdir()
    alpha = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(rgba_path)
    truncated = tmp_path / "extra" / "00000099_001.png"
    data = xray_paths[2].read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    store = tmp_path / "chestxray.zarr"

    result = cli("batch", xray_paths[0].parent, rgba_path, truncated, "--out", store,
                 "--workers", "2", "--no-progress")

    assert result.returncode == 3, result.stderr
    assert "failed: 00000099_001.png: " in result.stderr
    assert summary_of(result.stdout) == {"processed": 11, "total": 11, "already": 0, "ok": 10,
                                         "failed": 1}
    group = assert_store_matches_engine(
        store, {i: p for i, p in enumerate([*xray_paths, rgba_path])}, failed=[10])
    for key in group.array_keys():
        if key not in ("status", "fingerprint"):
            assert group[key].shape == (11, 1024, 1024)
    assert int(np.count_nonzero(group["status"][:] == STATUS_DONE)) == 10
    report = group.attrs["report"]
    assert [f["file"] for f in report["failures"]] == ["00000099_001.png"]
    assert "truncated" in report["failures"][0]["reason"]
    # the RGBA frame was converted as the reader does (Pillow's convert("L"))
    with Image.open(rgba_path) as im:
        gray = np.asarray(im.convert("L"))
    np.testing.assert_array_equal(group["mask"][9], OPERATIONS["mask"](gray))


def test_failed_frames_exit_3_and_are_listed_and_a_thumbnail_sorted_first_fails_alone(
    tmp_path,
):
    folder = tmp_path / "in"
    files = write_frames(folder, 4)
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(folder / "a_thumbnail.png")
    bad = write_bad_files(folder)
    store = tmp_path / "out.zarr"
    result = cli("batch", folder, "--out", store, "--workers", "1", "--no-progress",
                 "--filters", "log")
    assert result.returncode == 3, result.stderr
    failed = sorted(line.split(":")[1].strip() for line in result.stderr.splitlines()
                    if line.startswith("failed: "))
    assert failed == ["a_thumbnail.png", "notes.png", "truncated.png", "wrong_size.png"]
    assert "failed: a_thumbnail.png: wrong size" in result.stderr
    assert "a_thumbnail.png (24×32 uint8)" in result.stderr  # named when the store is made
    counts = summary_of(result.stdout)
    assert counts["ok"] == 6 and counts["failed"] == 4  # 4 frames, RGBA and LA
    names = zarr.open_group(str(store), mode="r")["status"].attrs["file_names"]
    done = {names.index(p.name): p for p in [*files, bad["rgba"], bad["la"]]}
    assert_store_matches_engine(store, done)

    help_text = cli("batch", "--help").stdout
    assert "Exit status: 0 every frame done; 3 " in " ".join(help_text.split())


def test_a_second_run_on_a_busy_store_is_refused_and_a_killed_one_leaves_no_stuck_lock(
    tmp_path,
):
    files = write_frames(tmp_path / "in", 12)
    store = tmp_path / "out.zarr"
    first = _start_slow_cli(tmp_path, [tmp_path / "in"], store, delay="0.3")
    try:
        _wait_for_done(store, 1, first)
        for extra in ((), ("--overwrite",)):
            second = cli("batch", tmp_path / "in", "--out", store, "--workers", "1",
                         "--no-progress", *extra)
            assert second.returncode == 2, second.stderr
            assert f"another napari-xray batch is running on {store} (PID {first.pid} on " \
                in second.stderr
            assert "Traceback" not in second.stderr
        assert first.poll() is None  # the refused runs changed nothing for the running one
    finally:
        kill_group(first)  # SIGKILL: the lock file stays, but not the lock
        first.communicate(timeout=30)
    assert Path(f"{store}.lock").exists()

    result = cli("batch", tmp_path / "in", "--out", store, "--workers", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"took over the lock of a run that did not finish (PID {first.pid}" in result.stderr
    assert "that process is gone" in result.stderr
    assert not Path(f"{store}.lock").exists()
    assert_store_matches_engine(store, dict(enumerate(files)))


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.4, 0.8, 1.2, 2.0])
def test_ctrl_c_at_any_moment_of_a_batch_is_one_line_and_130(tmp_path, delay):
    from test_compare import _interrupt_after_ready

    files = write_frames(tmp_path / "in", 6)
    store = tmp_path / "out.zarr"
    status, out, err = _interrupt_after_ready(
        ["batch", str(tmp_path / "in"), "--out", str(store), "--workers", "1",
         "--no-progress"], delay)
    assert "Traceback" not in err, err
    if "processed 6 of 6 frames" in out:
        # It finished first; a SIGINT while the interpreter shuts down (after main
        # returned) ends it by that signal, as Python does.
        assert status in (0, -signal.SIGINT), f"status {status}: {err}"
        return
    assert status == 130, f"status {status}: {err}"
    lines = err.strip().splitlines()
    assert lines[-1].startswith("napari-xray: interrupted"), err
    assert sum(line.startswith("napari-xray: interrupted") for line in lines) == 1, err
    assert not Path(f"{store}.lock").exists()
    result = cli("batch", tmp_path / "in", "--out", store, "--workers", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert_store_matches_engine(store, dict(enumerate(files)))


def _chestxray8_folder(tmp_path: Path) -> tuple[Path, list[Path], list[list[str]]]:
    """Six generated frames named as ChestX-ray8's, and an entry file in the released format."""
    folder = tmp_path / "images"
    paths = []
    for index, path in enumerate(write_frames(folder, 6)):
        named = path.with_name(f"00000042_{index:03d}.png")
        path.rename(named)
        paths.append(named)
    findings = ["Effusion", "No Finding", "Effusion|Mass", "Effusion", "Mass", "No Finding"]
    views = ["PA", "PA", "PA", "AP", "PA", "AP"]
    rows = [[p.name, f, str(i), "42", "61", "F", v, "2500", "2048", "0.168", "0.168", ""]
            for i, (p, f, v) in enumerate(zip(paths, findings, views, strict=True))]
    header = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
              "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],")
    (folder / "Data_Entry_2017.csv").write_text(
        "\n".join([header, *(",".join(r) for r in rows)]) + "\n")
    return folder, paths, rows


def test_where_selects_by_the_entry_file_and_the_store_keeps_the_rows(tmp_path):
    from napari_xray.plugin._reader import napari_get_reader

    folder, paths, rows = _chestxray8_folder(tmp_path)
    store = tmp_path / "effusion.zarr"
    result = cli("batch", folder, "--out", store, "--workers", "1", "--no-progress",
                 "--filters", "fast", "--where", "finding=effusion,view=PA")
    assert result.returncode == 0, result.stderr
    assert "--where finding=effusion,view=PA: 2 of 6 input image(s) match" in result.stderr
    # Rows 0 and 2 are Effusion on a PA view (row 3 is AP): by the entry file's own text.
    chosen = [r[0] for r in rows if "Effusion" in r[1].split("|") and r[6] == "PA"]
    status = zarr.open_group(str(store), mode="r")["status"]
    assert status.attrs["file_names"] == chosen == [paths[0].name, paths[2].name]
    assert_store_matches_engine(store, {0: paths[0], 1: paths[2]})

    layers = napari_get_reader(str(store))(str(store))
    for _data, kwargs, _kind in layers:
        frames = kwargs["metadata"]["frames"]
        assert [f["findings"] for f in frames] == [["Effusion"], ["Effusion", "Mass"]]
        assert kwargs["metadata"]["chestxray8"]["entry_file"] == str(folder / "Data_Entry_2017.csv")
        # 0.168 mm × 2048 / 96 rows down, × 2500 / 128 columns across (the frames' size).
        assert kwargs["scale"] == pytest.approx((1.0, 0.168 * 2048 / 96, 0.168 * 2500 / 128))

    for where, message in [("finding=Pneumonia", "no input image meets --where"),
                           ("age=61", "unknown key 'age'; use finding, view, sex, patient"),
                           ("finding", "'finding' is not KEY=VALUE")]:
        refused = cli("batch", folder, "--out", tmp_path / "other.zarr", "--workers", "1",
                      "--no-progress", "--where", where)
        assert refused.returncode == 2, refused.stderr
        assert message in refused.stderr and "Traceback" not in refused.stderr
        assert not (tmp_path / "other.zarr").exists()
    (folder / "Data_Entry_2017.csv").unlink()
    refused = cli("batch", folder, "--out", tmp_path / "other.zarr", "--workers", "1",
                  "--no-progress", "--where", "view=AP")
    assert refused.returncode == 2 and "pass --entries Data_Entry_2017.csv" in refused.stderr
