"""Run a batch: connect to (or start) a Dask cluster, compute the graph, write the report.

:func:`run_batch` is what ``napari-xray batch`` calls; :func:`dask_client` gives
the cluster it runs on and :class:`BatchSummary` what it reports.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_xray.batch.inputs import discover_inputs, parse_filters, parse_params, parse_shape
from napari_xray.batch.store import (
    is_local_store,
    open_or_create_store,
    read_status,
    remove_partial_files,
    timestamp,
    todo_frames,
    write_report,
)
from napari_xray.batch.worker import WORKER_ENVIRONMENT, build_graph, check_workers
from napari_xray.errors import BatchError
from napari_xray.io.store import STATUS_DONE

__all__ = ["BatchSummary", "dask_client", "run_batch"]

# How long to wait for a worker to join an existing cluster.
WORKER_WAIT_SECONDS = 60.0
_LAST_STATE = {
    "running": "it was killed, or is still running elsewhere",
    "interrupted": "it was interrupted",
    "stopped": "it stopped on an error",
}


@dataclass
class BatchSummary:
    """The outcome of one run (also what the CLI prints at the end)."""

    store: str
    n_frames: int
    already_done: int = 0
    processed: int = 0
    ok: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
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
        """The summary line(s) printed at the end of a run."""
        lines = [
            f"napari-xray batch: processed {self.processed} of {self.n_frames} frames "
            f"({self.already_done} already done): {self.ok} ok, {len(self.failures)} failed, "
            f"in {self.seconds:.2f} s ({self.images_per_second:.2f} images/s on "
            f"{self.workers} worker(s), {self.threads} thread(s); cluster start "
            f"{self.startup_seconds:.1f} s) -> {self.store}"
        ]
        if self.processed:
            per = 1e3 / self.processed
            lines.append(
                f"  per frame in the workers: read {self.read_seconds * per:.1f} ms, filters "
                f"{self.filter_seconds * per:.1f} ms, write {self.write_seconds * per:.1f} ms"
            )
        for failure in self.failures[:20]:
            lines.append(f"  failed: {failure['file']}: {failure['reason']}")
        if len(self.failures) > 20:
            lines.append(f"  … and {len(self.failures) - 20} more (see the store's report)")
        return "\n".join(lines)


@contextmanager
def dask_client(
    scheduler_address: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    log: Callable[[str], None] = lambda message: None,
):
    """Context manager: ``(client, where)`` for a batch, never the global default client.

    An address (argument, or ``DASK_SCHEDULER_ADDRESS`` when ``workers`` is not
    given) or a scheduler file connects to that cluster (``where`` is its
    address); otherwise a LocalCluster of ``workers`` (default: one per core)
    single-threaded processes on 127.0.0.1, without dashboard, is started
    (``where == "local"``) with
    :data:`~napari_xray.batch.worker.WORKER_ENVIRONMENT`. Everything started
    here is closed on exit, also on Ctrl-C.

    Raises
    ------
    BatchError
        The scheduler cannot be reached, no worker joins within a minute, or
        ``workers < 1``.
    """
    import logging

    import dask
    from distributed import Client, LocalCluster

    if scheduler_address is None and scheduler_file is None and workers is None:
        scheduler_address = os.environ.get("DASK_SCHEDULER_ADDRESS") or dask.config.get(
            "scheduler-address", None
        )
    if scheduler_address or scheduler_file:
        target = scheduler_address or f"scheduler file {scheduler_file}"
        try:
            client = Client(
                scheduler_address,
                scheduler_file=scheduler_file,
                set_as_default=False,
                timeout="30s",
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise BatchError(
                f"cannot connect to the Dask scheduler at {target} ({exc}); check the address "
                "or start one with 'dask scheduler'"
            ) from None
        with client:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
            except TimeoutError:
                raise BatchError(
                    f"no Dask worker joined the scheduler at {target} within "
                    f"{WORKER_WAIT_SECONDS:g} s; start workers with 'dask worker {target}'"
                ) from None
            yield client, str(client.scheduler.address)
        return
    n_workers = int(workers) if workers is not None else (os.cpu_count() or 1)
    if n_workers < 1:
        raise BatchError(f"--workers must be at least 1, got {workers}")
    log(f"starting a local Dask cluster: {n_workers} worker process(es), 1 thread each")
    with (
        dask.config.set(WORKER_ENVIRONMENT),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # the scheduler's small HTTP endpoint: any free port on 127.0.0.1, never :8787
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            # task errors reach the client as exceptions; worker shutdown chatter is noise
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client, "local"


def run_batch(
    inputs: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    *,
    filters: str | Sequence[str] | None = None,
    params: Iterable[str] | Mapping[str, Mapping[str, Any]] | None = None,
    float_dtype: str = "float32",
    compression: str = "none",
    chunk_frames: int = 1,
    frames_per_task: int | None = None,
    shape: str | Sequence[int] | None = None,
    scheduler_address: str | None = None,
    scheduler_file: str | None = None,
    workers: int | None = None,
    client=None,
    strict: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Filter every input frame into the Zarr store ``out``; resumes a partial store.

    Parameters
    ----------
    inputs
        Files, folders and glob patterns (see
        :func:`~napari_xray.batch.inputs.discover_inputs`).
    out
        The store: a local path (``results.zarr``) or an fsspec URL.
    filters, params
        Operation keys (default: all) and ``"KEY.NAME=VALUE"`` overrides.
    float_dtype
        ``"float32"`` (default) or ``"float16"`` for floating-point results.
    compression
        Codec of floating-point results: ``"none"`` (default: edge-filter floats
        shrink only ~10 % and compressing costs more time than it saves),
        ``"lz4"`` (Blosc LZ4 + byte shuffle) or ``"zstd"`` (level 1). Masks are
        always compressed (LZ4, or Zstd with ``"zstd"``).
    chunk_frames, frames_per_task
        Frames per zarr chunk of the results (and per completion record); frames
        per Dask task and per chunk of the status array (default ``N / 32``, at
        most 64). Both are fixed when the store is created.
    shape
        ``"HxW"``: the frame size (default: that of the first readable input).
    scheduler_address, scheduler_file, workers, client
        Where to run: an existing client, a scheduler, or a LocalCluster of
        ``workers`` processes (default: one per core). ``DASK_SCHEDULER_ADDRESS``
        is used when none of these is given.
    strict
        Stop at the first bad file (it is still recorded in the report; frames
        already done stay done) and raise :class:`~napari_xray.errors.BatchError`.
    overwrite
        Delete an existing napari-xray store at ``out`` first.
    progress
        Show a progress bar (tqdm, on stderr).
    log
        Called with one-line messages (default: print to stderr).

    Returns
    -------
    BatchSummary

    Raises
    ------
    BatchError
        User errors (inputs, options, incompatible store, no workers, a bad file
        under ``strict``, a task that failed on the cluster).
    KeyboardInterrupt
        On Ctrl-C, after cancelling the work and writing the report; the store
        stays consistent and a rerun finishes it.
    """
    if log is None:
        def log(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

    files = discover_inputs(inputs)
    keys = parse_filters(filters)
    resolved = parse_params(params, keys)
    plan, group = open_or_create_store(
        out,
        files,
        keys,
        resolved,
        float_dtype=float_dtype,
        compression=compression,
        chunk_frames=chunk_frames,
        frames_per_task=frames_per_task,
        shape=parse_shape(shape),
        overwrite=overwrite,
        log=log,
    )
    report = dict(group.attrs).get("report") or {}
    last = report.get("last_run") or {}
    if last and last.get("state") != "complete" and is_local_store(plan.store):
        removed = remove_partial_files(plan.store)
        log(
            "the previous run of this store did not finish "
            f"({_LAST_STATE.get(last.get('state'), last.get('state'))}); resuming"
            + (f" (removed {removed} partial chunk file(s))" if removed else "")
        )
    todo = todo_frames(plan, read_status(group))
    summary = BatchSummary(
        store=os.fspath(out),
        n_frames=plan.n_frames,
        already_done=int(plan.n_frames - todo.size),
    )
    if todo.size == 0:
        log(f"{out}: all {plan.n_frames} frames are already done")
        return summary

    source_paths = [str(p) for p in files]
    run_info: dict[str, Any] = {"started": timestamp(), "state": "running",
                                "frames": int(todo.size)}
    group.attrs["report"] = dict(report, last_run=run_info)
    failures: dict[int, str] = {}
    state = "stopped"
    t_start = time.perf_counter()
    try:
        with _client_for(client, scheduler_address, scheduler_file, workers, log) as (cl, where):
            summary.startup_seconds = time.perf_counter() - t_start
            summary.scheduler = where
            summary.workers, summary.threads = check_workers(
                cl, plan, source_paths[int(todo[0])], local=where == "local"
            )
            graph = build_graph(plan, todo, source_paths)
            t0 = time.perf_counter()
            try:
                _compute(cl, graph, summary, failures, strict, progress, files)
            finally:
                summary.seconds = time.perf_counter() - t0
        state = "complete"
    except KeyboardInterrupt:
        state = "interrupted"
        raise
    finally:
        # Written after the cluster is closed, so no task still changes the status.
        summary.interrupted = state != "complete"
        run_info.update(_run_record(summary, state))
        final = write_report(group, plan, files, failures, run_info)
        if state == "interrupted":
            log(
                f"interrupted: {final['done']} of {final['frames']} frames are done and the "
                "store is consistent; rerun the same command to finish it"
            )
    return summary


@contextmanager
def _client_for(client, scheduler_address, scheduler_file, workers, log):
    """``(client, where)``: the given client, else one from :func:`dask_client`."""
    if client is not None:
        yield client, str(getattr(client.scheduler, "address", "client"))
        return
    with dask_client(scheduler_address, scheduler_file, workers, log) as pair:
        yield pair


def _run_record(summary: BatchSummary, state: str) -> dict[str, Any]:
    return {
        "state": state,
        "finished": timestamp(),
        "processed": summary.processed,
        "ok": summary.ok,
        "failed": len(summary.failures),
        "seconds": round(summary.seconds, 3),
        "images_per_second": round(summary.images_per_second, 3),
        "workers": summary.workers,
        "threads": summary.threads,
        "scheduler": summary.scheduler,
    }


def _compute(client, graph, summary: BatchSummary, failures: dict[int, str], strict: bool,
             progress: bool, files: Sequence[Path]) -> None:
    """Run the graph on ``client``; fold each block's results into ``summary`` as it ends."""
    from distributed import as_completed, futures_of
    from tqdm.auto import tqdm

    persisted = client.persist(graph)
    futures = futures_of(persisted)
    bar = tqdm(
        total=int(graph.shape[0]),
        unit="img",
        desc="batch",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        for future in as_completed(futures, loop=client.loop):
            try:
                block = future.result()
            except Exception as exc:
                raise BatchError(
                    f"a batch task failed on the cluster ({type(exc).__name__}: {exc}); "
                    "frames already done are kept, rerun to resume"
                ) from exc
            for result in block:
                summary.processed += 1
                summary.read_seconds += result.read_seconds
                summary.filter_seconds += result.filter_seconds
                summary.write_seconds += result.write_seconds
                if result.status == STATUS_DONE:
                    summary.ok += 1
                else:
                    failures[result.index] = result.reason
                    summary.failures.append(
                        {"index": result.index, "file": files[result.index].name,
                         "reason": result.reason}
                    )
            bar.update(len(block))
            if strict and summary.failures:
                first = summary.failures[0]
                raise BatchError(
                    f"--strict: {first['file']} cannot be used: {first['reason']}; "
                    f"stopped after {summary.processed} frame(s) (those done are kept). "
                    "Fix or remove the file and rerun, or drop --strict to skip bad files"
                )
    finally:
        bar.close()
        client.cancel(futures)
        del persisted
