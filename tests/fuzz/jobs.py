"""The kill, interrupt and concurrency fuzz classes of ``compare`` and ``batch``.

Every case runs the real command line in its own process group and stops it at
an instant drawn from the class's seeded RNG: SIGKILL of the whole group (the
command, the Dask nanny and workers) or SIGINT (what Ctrl-C sends), or starts two
batches on one store at once. Afterwards:

* ``compare``: the output folder holds the complete old set or the complete new
  set (byte for byte), the user's own file in it is intact, Ctrl-C gave status
  130 and one line;
* ``batch``: every frame marked done equals a clean run's result bit for bit,
  the next run is never refused by a lock left behind, a refused concurrent run
  names the running one; the last case resumes the store to the clean run's
  store exactly (results, statuses, fingerprints) and no lock file is left;
* the inputs are unchanged.

Batch runs read every frame :data:`READ_DELAY` s late (``batch_with_slow_reads``)
so that a run lasts long enough to be stopped half-way.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .framework import CLEAR_ERROR, FAILURE, RIGHT_ANSWER, FuzzClass, Outcome

TESTS_DIR = Path(__file__).resolve().parents[1]
SLOW_READS = TESTS_DIR / "batch" / "batch_with_slow_reads.py"
#: Seconds each batch frame read is delayed by.
READ_DELAY = "0.08"
#: Longest a stopped or finishing run may take before it counts as a hang.
RUN_TIMEOUT = 120.0
OUTPUT_FILES = ("comparison.png", "stack.gif", "histogram.png", "statistics.csv",
                "statistics.json")


# --------------------------------------------------------------------------- helpers


def _start(args: list[str], **kwargs) -> subprocess.Popen:
    """``python ARGS…`` in a new process group, output captured."""
    return subprocess.Popen(
        [sys.executable, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True, env=dict(os.environ, MPLBACKEND="Agg"), **kwargs,
    )


def _finish_with_output(process: subprocess.Popen) -> tuple[int, str, str]:
    """Wait for ``process`` (its group is killed after :data:`RUN_TIMEOUT`); status, out, err."""
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        out, err = process.communicate()
        return -999, out, f"no exit within {RUN_TIMEOUT:g} s\n{err}"
    return process.returncode, out, err


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    """Wait for ``process``; (status, stderr)."""
    status, _, err = _finish_with_output(process)
    return status, err


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _stop_at(args: list[str], delay: float, sig: int) -> tuple[int, str, str]:
    process = _start(args)
    time.sleep(delay)
    _signal_group(process, sig)
    return _finish_with_output(process)


def _digest(folder: Path) -> str:
    """One hash of every file under ``folder`` (names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _output_set(folder: Path) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in OUTPUT_FILES if (folder / n).exists()}


def _write_pngs(folder: Path, rng: np.random.Generator, count: int, shape) -> list[Path]:
    from PIL import Image

    from napari_xray.phantom import make_phantom

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, frame in enumerate(make_phantom(count, shape, seed=int(rng.integers(1 << 30)))):
        path = folder / f"img_{index}.png"
        Image.fromarray(frame).save(path)
        paths.append(path)
    return paths


def _interrupt_line(status: int, err: str, finished: bool) -> str | None:
    """Why a SIGINT-ed run misbehaved, or None (finished, or 130 with one line).

    A run that ``finished`` before the signal may also end by SIGINT itself: the
    signal then hit the interpreter's shutdown, after ``main`` returned.
    """
    if "Traceback" in err:
        return f"a traceback after Ctrl-C: {err.strip().splitlines()[-1]}"
    if status in (0, 3) or (finished and status == -signal.SIGINT):
        return None  # it finished before the signal
    if status != 130:
        return f"exit status {status} after Ctrl-C: {err.strip()[-300:]}"
    lines = [line for line in err.splitlines() if line.startswith("napari-xray: interrupted")]
    if len(lines) != 1 or not err.rstrip().endswith(lines[0]):
        return f"not one 'interrupted' line at the end: {err.strip()[-300:]}"
    return None


# --------------------------------------------------------------------------- compare


def _run_compare(seed: int, count: int | None) -> Iterator[Outcome]:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="fuzz-compare-") as tmp:
        root = Path(tmp)
        old_inputs = _write_pngs(root / "old", rng, 2, (48, 56))
        new_inputs = _write_pngs(root / "new", rng, 3, (48, 56))
        inputs_digest = _digest(root / "old") + _digest(root / "new")
        command = ["-m", "napari_xray.cli", "compare", *new_inputs, "--quiet"]
        reference = root / "reference"
        out = root / "parent" / "out"
        started = time.perf_counter()
        # The new set (a clean run elsewhere) and the old set in `out`, side by side.
        runs = [_start([*command, "--out", reference]),
                _start(["-m", "napari_xray.cli", "compare", *old_inputs, "--out", out, "--quiet"])]
        for status, err in [_finish(process) for process in runs]:
            if status != 0:
                yield Outcome("compare: clean run", FAILURE, err.strip()[-300:])
                return
        duration = time.perf_counter() - started
        new_set, old_set = _output_set(reference), _output_set(out)
        (out / "notes.txt").write_text("the user's own file\n")
        saved_old = root / "saved-old"
        shutil.copytree(out, saved_old)
        for index in range(count or 5):
            sig = signal.SIGKILL if index % 3 != 2 else signal.SIGINT
            # The instant is a seeded share of a clean run's duration on this machine.
            share = float(rng.uniform(0.05, 1.05))
            delay = max(0.5 if sig == signal.SIGINT else 0.05, share * duration)
            name = f"compare: {signal.Signals(sig).name} at {share:.0%} of a run ({delay:.2f} s)"
            t0 = time.perf_counter()
            status, _, err = _stop_at([*command, "--out", out], delay, sig)
            found = _output_set(out)
            problem = None
            if found not in (old_set, new_set):
                mixed = sorted(n for n in found if found[n] == new_set.get(n))
                problem = f"a mixed set: {mixed} new, {sorted(set(found) - set(mixed))} old"
            elif (out / "notes.txt").read_text() != "the user's own file\n":
                problem = "the user's own file in the folder changed"
            elif sig == signal.SIGINT:
                problem = _interrupt_line(status, err, finished=found == new_set)
            if problem is None and _digest(root / "old") + _digest(root / "new") != inputs_digest:
                problem = "an input changed"
            yield Outcome(name, FAILURE if problem else RIGHT_ANSWER, problem or "",
                          time.perf_counter() - t0)
            if found == new_set:  # start the next case from the old set again
                shutil.rmtree(out)
                shutil.copytree(saved_old, out)
        t0 = time.perf_counter()
        status, err = _finish(_start([*command, "--out", out]))
        leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
        problem = (f"exit status {status}: {err.strip()[-300:]}" if status != 0 else
                   f"staging folders left: {leftovers}" if leftovers else
                   "not the new set" if _output_set(out) != new_set else None)
        yield Outcome("compare: the run after the kills", FAILURE if problem else RIGHT_ANSWER,
                      problem or "", time.perf_counter() - t0)


# --------------------------------------------------------------------------- batch


class _BatchScene:
    """Inputs (good frames, a truncated file, a thumbnail) and a clean run's store."""

    def __init__(self, root: Path, rng: np.random.Generator, bad_files: bool = True):
        self.root = root
        folder = root / "in"
        _write_pngs(folder, rng, 10, (64, 80))
        self.done_status = 0
        if bad_files:  # they fail in every run: the run ends in status 3
            whole = (folder / "img_3.png").read_bytes()
            (folder / "img_truncated.png").write_bytes(whole[: len(whole) // 2])
            from PIL import Image

            Image.fromarray(np.zeros((24, 32), np.uint8)).save(folder / "a_thumbnail.png")
            self.done_status = 3
        self.inputs = [folder]
        self.digest = _digest(folder)
        self.options = ["--workers", "1", "--no-progress", "--frames-per-task", "3"]
        self.clean = root / "clean.zarr"
        status, err = _finish(_start(self.command(self.clean, slow=False)))
        self.error = (None if status == self.done_status
                      else f"clean run: status {status}: {err[-300:]}")

    def command(self, store: Path, *extra: str, slow: bool = True) -> list:
        head = [SLOW_READS, READ_DELAY] if slow else ["-m", "napari_xray.cli"]
        return [*head, "batch", *self.inputs, "--out", store, *self.options, *extra]

    def problems(self, store: Path, final: bool = False) -> str | None:
        """What is wrong with ``store`` against the clean run (None: nothing)."""
        import zarr

        if _digest(self.root / "in") != self.digest:
            return "an input changed"
        if not store.exists():
            return "no store after the final run" if final else None
        try:
            got = zarr.open_group(str(store), mode="r")
            status = got["status"][:]
        except Exception as exc:  # noqa: BLE001 - the store must always open
            return f"the store does not open: {type(exc).__name__}: {exc}"
        clean = zarr.open_group(str(self.clean), mode="r")
        done = np.flatnonzero(status == 1)
        for key in clean.array_keys():
            if key in ("status", "fingerprint"):
                continue
            if not np.array_equal(got[key].get_orthogonal_selection((done,)),
                                  clean[key].get_orthogonal_selection((done,))):
                return f"{key}: a frame marked done differs from the clean run's"
        if final:
            for key in clean.array_keys():
                if not np.array_equal(got[key][:], clean[key][:]):
                    return f"{key} differs from the clean run's store after resuming"
            if Path(str(store) + ".lock").exists():
                return "a lock file was left after the run finished"
        return None


def _outcome(name: str, problem: str | None, t0: float, refused: bool = False) -> Outcome:
    verdict = FAILURE if problem else CLEAR_ERROR if refused else RIGHT_ANSWER
    return Outcome(name, verdict, problem or "", time.perf_counter() - t0)


def _resume(scene: _BatchScene, store: Path, name: str) -> Outcome:
    t0 = time.perf_counter()
    status, err = _finish(_start(scene.command(store, slow=False)))
    problem = (None if status == scene.done_status
               else f"resume: exit status {status}: {err.strip()[-300:]}")
    return _outcome(name, problem or scene.problems(store, final=True), t0)


def _run_batch_stops(seed: int, count: int | None) -> Iterator[Outcome]:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="fuzz-batch-") as tmp:
        scene = _BatchScene(Path(tmp), rng)
        if scene.error:
            yield Outcome("batch: clean run", FAILURE, scene.error)
            return
        store = Path(tmp) / "stopped.zarr"
        for index in range(count or 3):
            sig = signal.SIGKILL if index % 2 == 0 else signal.SIGINT
            delay = float(rng.uniform(0.3, 3.0))
            name = f"batch: {signal.Signals(sig).name} at {delay:.2f} s"
            t0 = time.perf_counter()
            status, out, err = _stop_at(scene.command(store), delay, sig)
            problem = None
            if "another napari-xray batch is running" in err:
                problem = f"refused by a lock left behind: {err.strip()[-300:]}"
            elif sig == signal.SIGINT:
                finished = "napari-xray batch: processed" in out
                problem = _interrupt_line(status, err, finished)
            elif "Traceback" in err:
                problem = f"a traceback: {err.strip()[-300:]}"
            yield _outcome(name, problem or scene.problems(store), t0)
        yield _resume(scene, store, "batch: resume after the stops")


def _run_batch_concurrent(seed: int, count: int | None) -> Iterator[Outcome]:
    rng = np.random.default_rng(seed)
    pairs = [((), ()), ((), ("--overwrite",)), (("--overwrite",), ("--overwrite",))]
    with tempfile.TemporaryDirectory(prefix="fuzz-concurrent-") as tmp:
        scene = _BatchScene(Path(tmp), rng, bad_files=False)
        if scene.error:
            yield Outcome("batch concurrent: clean run", FAILURE, scene.error)
            return
        for index in range(count or 2):
            first, second = pairs[index % len(pairs)]
            gap = float(rng.uniform(0.0, 1.5))
            store = Path(tmp) / f"shared-{index}.zarr"
            name = (f"batch concurrent: {' '.join(first) or 'run'} + "
                    f"{' '.join(second) or 'run'} {gap:.2f} s later")
            t0 = time.perf_counter()
            a = _start(scene.command(store, *first))
            time.sleep(gap)
            b = _start(scene.command(store, *second))
            problem, refused, finished = None, False, False
            for status, err in (_finish(a), _finish(b)):
                if status == 2 and "another napari-xray batch is running" in err:
                    refused = True
                    if "PID " not in err:
                        problem = f"the refusal names no PID: {err.strip()[-300:]}"
                elif status == scene.done_status:
                    finished = True
                else:
                    problem = f"exit status {status}: {err.strip()[-300:]}"
            if problem is None and not finished:
                problem = "no run finished"
            yield _outcome(name, problem or scene.problems(store, final=True), t0, refused)


def _class(name: str, run: Callable, seed: int, description: str) -> FuzzClass:
    return FuzzClass(name, run, seed=seed, description=description)


COMPARE_STOPS = _class(
    "compare killed/interrupted", _run_compare, 20261211,
    "SIGKILL or SIGINT of `compare` at seeded random instants: complete old or new set",
)
BATCH_STOPS = _class(
    "batch killed/interrupted", _run_batch_stops, 20261212,
    "SIGKILL or SIGINT of a batch's process group at seeded random instants, then resume: "
    "bit-exact with a clean run",
)
BATCH_CONCURRENT = _class(
    "batch concurrent", _run_batch_concurrent, 20261213,
    "two batches (plain or --overwrite) on one store: one refused naming the other's PID, "
    "the store resumes bit-exact",
)
#: The classes of this module, for the registry.
JOB_CLASSES = (COMPARE_STOPS, BATCH_STOPS, BATCH_CONCURRENT)
