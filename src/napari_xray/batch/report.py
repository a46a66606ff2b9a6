"""What a batch reports: the store's ``report`` attribute and the summary of one run.

:func:`write_report` rebuilds the report from the status array after each run;
:class:`BatchSummary` is what :func:`napari_xray.batch.run.run_batch` returns and
the command line prints (the summary on stdout, failed and recomputed frames on
stderr).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from napari_xray.batch.integrity import read_blocks
from napari_xray.io.store import STATUS_ARRAY, STATUS_DONE, STATUS_FAILED, STATUS_TODO

__all__ = ["BatchSummary", "empty_report", "run_record", "timestamp", "write_report"]

#: How many failed (or recomputed) frames the command line lists; the report has all.
LISTED_FRAMES = 50


def timestamp() -> str:
    """The current UTC time as the report records it (ISO 8601, whole seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def empty_report(n_frames: int) -> dict[str, Any]:
    """The report of a new store: every frame to do."""
    return {
        "frames": n_frames,
        "done": 0,
        "failed": 0,
        "to_do": n_frames,
        "failures": [],
        "updated": timestamp(),
        "last_run": None,
    }


def write_report(group, plan, files: Sequence[Path], failures: Mapping[int, str],
                 last_run: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the store's report from the status array and the known failure reasons.

    ``plan`` is the store's :class:`~napari_xray.batch.store.BatchPlan`. Reasons
    recorded by earlier runs are kept for frames that are still failed;
    ``failures`` (frame index → reason) adds this run's. A damaged status chunk
    counts as "to do". Returns the report written.
    """
    status, _ = read_blocks(group[STATUS_ARRAY], plan.n_frames, plan.task_frames, STATUS_TODO)
    previous = {
        int(f["index"]): f["reason"]
        for f in (dict(group.attrs).get("report") or {}).get("failures", [])
    }
    reasons = {**previous, **failures}
    failed = np.flatnonzero(status == STATUS_FAILED)
    report = {
        "frames": plan.n_frames,
        "done": int(np.count_nonzero(status == STATUS_DONE)),
        "failed": int(failed.size),
        "to_do": int(np.count_nonzero(status == STATUS_TODO)),
        "failures": [
            {
                "index": int(i),
                "file": files[i].name,
                "path": str(files[i]),
                "reason": reasons.get(int(i), "unknown (the run that saw it was killed)"),
            }
            for i in failed
        ],
        "updated": timestamp(),
        "last_run": last_run,
    }
    group.attrs["report"] = report
    return report


@dataclass
class BatchSummary:
    """The outcome of one run (also what the CLI prints at the end).

    ``failures`` and ``recomputed`` hold ``{"index", "file", "reason"}`` dicts:
    frames that failed in this run, and done frames computed again because their
    input changed or a stored chunk was damaged.
    """

    store: str
    n_frames: int
    already_done: int = 0
    processed: int = 0
    ok: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    recomputed: list[dict[str, Any]] = field(default_factory=list)
    verified: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0
    workers: int = 0
    threads: int = 0
    scheduler: str = ""
    read_seconds: float = 0.0
    filter_seconds: float = 0.0
    write_seconds: float = 0.0
    interrupted: bool = False

    @property
    def images_per_second(self) -> float:
        """Frames processed per second of wall time (cluster start-up excluded)."""
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        """The summary line(s) printed at the end of a run (stdout)."""
        lines = [
            f"napari-xray batch: processed {self.processed} of {self.n_frames} frames "
            f"({self.already_done} already done): {self.ok} ok, {len(self.failures)} failed, "
            f"in {self.seconds:.2f} s ({self.images_per_second:.2f} images/s on "
            f"{self.workers} worker(s), {self.threads} thread(s); cluster start "
            f"{self.startup_seconds:.1f} s) -> {self.store}"
        ]
        if self.verified:
            lines.append(
                f"  verified {self.verified} done frame(s): {len(self.recomputed)} damaged "
                "or changed and recomputed"
            )
        if self.processed:
            per = 1e3 / self.processed
            lines.append(
                f"  per frame in the workers: read {self.read_seconds * per:.1f} ms, filters "
                f"{self.filter_seconds * per:.1f} ms, write {self.write_seconds * per:.1f} ms"
            )
        return "\n".join(lines)

    def format_problems(self) -> str:
        """The recomputed and the failed frames, one a line (stderr); "" when none."""
        lines = []
        for title, entries in (("recomputed", self.recomputed), ("failed", self.failures)):
            for entry in entries[:LISTED_FRAMES]:
                lines.append(f"{title}: {entry['file']}: {entry['reason']}")
            if len(entries) > LISTED_FRAMES:
                lines.append(
                    f"… and {len(entries) - LISTED_FRAMES} more {title} frames (all are in "
                    f"the store's report: {self.store}/zarr.json)"
                    if title == "failed"
                    else f"… and {len(entries) - LISTED_FRAMES} more {title} frames"
                )
        return "\n".join(lines)


def run_record(summary: BatchSummary, state: str) -> dict[str, Any]:
    """The ``last_run`` entry of the report for a run that ended in ``state``."""
    return {
        "state": state,
        "finished": timestamp(),
        "processed": summary.processed,
        "ok": summary.ok,
        "failed": len(summary.failures),
        "recomputed": len(summary.recomputed),
        "verified": summary.verified,
        "seconds": round(summary.seconds, 3),
        "images_per_second": round(summary.images_per_second, 3),
        "workers": summary.workers,
        "threads": summary.threads,
        "scheduler": summary.scheduler,
    }
