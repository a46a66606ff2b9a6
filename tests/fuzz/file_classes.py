"""The PNG and DICOM fuzz classes: mutated files read by capped worker processes.

Each case's bytes are written to a temporary folder and handed to one of two
workers (:mod:`fuzz.file_worker`, address space capped at :data:`MEMORY_CAP`).
A worker that dies or takes longer than :data:`CASE_TIMEOUT` is a failure (and
is replaced); after each case the file must still hold exactly the bytes written.
"""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .dicom_cases import dicom_cases
from .files import FileCase
from .framework import FAILURE, FuzzClass, Outcome
from .png_cases import png_cases

#: Address-space cap of a worker (imports take about 0.3 GB of it).
MEMORY_CAP = 1 << 30
#: Longest a case may take before it counts as a hang.
CASE_TIMEOUT = 30.0
TESTS_DIR = Path(__file__).resolve().parents[1]
FRAME_NAMES = [f"00000011_{i:03d}.png" for i in range(9)]


def real_frames() -> list[Path]:
    """The nine ChestX-ray8 frames, where the tests find them ([] if they are absent)."""
    folder = Path(
        os.environ.get("NAPARI_XRAY_DATA_DIR") or TESTS_DIR.parents[1] / "shared" / "xray"
    )
    paths = [folder / name for name in FRAME_NAMES]
    return paths if all(p.is_file() for p in paths) else []


class _Worker:
    def __init__(self):
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
        )
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fuzz.file_worker", str(MEMORY_CAP)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # libpng prints its errors there
            text=True,
            env=env,
        )
        self.job: tuple[FileCase, Path, float] | None = None

    def send(self, case: FileCase, path: Path, oracle_path: Path) -> None:
        request = {
            "path": str(path),
            "kind": case.kind,
            "expect": case.expect,
            "oracle_path": str(oracle_path),
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        self.job = (case, path, time.monotonic())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def run_file_cases(cases: Iterable[FileCase], workers: int = 2) -> Iterator[Outcome]:
    """Run each case in a capped worker; yield its outcome (order: as they finish)."""
    pending = iter(enumerate(cases))
    selector = selectors.DefaultSelector()
    pool: list[_Worker] = []
    with tempfile.TemporaryDirectory(prefix="napari-xray-fuzz-") as folder:
        folder = Path(folder)
        oracles: dict[str, Path] = {}

        def oracle_file(case: FileCase, path: Path) -> Path:
            if case.oracle_data is None:
                return path
            key = hashlib.sha256(case.oracle_data).hexdigest()[:16]
            if key not in oracles:
                oracles[key] = folder / f"oracle-{key}{case.suffix}"
                oracles[key].write_bytes(case.oracle_data)
            return oracles[key]

        def feed(worker: _Worker) -> bool:
            item = next(pending, None)
            if item is None:
                return False
            index, case = item
            path = folder / f"case{index:05d}{case.suffix}"
            path.write_bytes(case.data)
            worker.send(case, path, oracle_file(case, path))
            return True

        def replace(worker: _Worker) -> _Worker:
            selector.unregister(worker.process.stdout)
            worker.stop()
            fresh = _Worker()
            selector.register(fresh.process.stdout, selectors.EVENT_READ, fresh)
            pool[pool.index(worker)] = fresh
            return fresh

        try:
            for _ in range(workers):
                worker = _Worker()
                pool.append(worker)
                selector.register(worker.process.stdout, selectors.EVENT_READ, worker)
                feed(worker)
            while any(w.job for w in pool):
                for key, _ in selector.select(timeout=1.0):
                    worker = key.data
                    line = worker.process.stdout.readline()
                    case, path, started = worker.job
                    worker.job = None
                    if not line:
                        code = worker.process.wait()
                        yield Outcome(case.name, FAILURE, f"the worker died (exit status {code})")
                        worker = replace(worker)
                    else:
                        yield _outcome(case, path, json.loads(line))
                    path.unlink(missing_ok=True)
                    feed(worker)
                now = time.monotonic()
                for worker in list(pool):
                    if worker.job and now - worker.job[2] > CASE_TIMEOUT:
                        case, path, _ = worker.job
                        yield Outcome(case.name, FAILURE, f"no answer within {CASE_TIMEOUT:g} s")
                        path.unlink(missing_ok=True)
                        feed(replace(worker))
        finally:
            for worker in pool:
                worker.process.stdin.close()
                worker.stop()


def _outcome(case: FileCase, path: Path, reply: dict) -> Outcome:
    verdict, detail = reply["verdict"], reply["detail"]
    if path.read_bytes() != case.data:
        verdict, detail = FAILURE, "the input file was modified"
    return Outcome(case.name, verdict, detail, reply["seconds"])


def _run_png(seed: int, count: int | None) -> Iterator[Outcome]:
    return run_file_cases(png_cases(seed, count or 1000, real_frames()))


def _run_dicom(seed: int, count: int | None) -> Iterator[Outcome]:
    return run_file_cases(dicom_cases(seed, count or 800))


PNG_BYTES = FuzzClass(
    "PNG bytes",
    _run_png,
    seed=20261201,
    description="mutated real frames and small PNGs of every colour type",
)
DICOM_BYTES = FuzzClass(
    "DICOM bytes",
    _run_dicom,
    seed=20261202,
    description="mutated pydicom test files (bytes and elements)",
)
