"""Run a batch: lock the store, connect to (or start) a Dask cluster, compute, report.

:func:`run_batch` is what ``napari-xray batch`` calls; :func:`dask_client` gives
the cluster it runs on and :class:`~napari_xray.batch.report.BatchSummary` what
it reports.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from napari_xray.batch.folders import remove_leftovers, remove_partial_files
from napari_xray.batch.inputs import (
    discover_inputs,
    parse_filters,
    parse_params,
    parse_shape,
    select_by_entries,
)
from napari_xray.batch.integrity import FINGERPRINT_ARRAY, changed_inputs, read_blocks
from napari_xray.batch.lock import StoreLock
from napari_xray.batch.report import BatchSummary, run_record, timestamp, write_report
from napari_xray.batch.store import (
    BatchPlan,
    is_local_store,
    open_or_create_store,
    read_status_blocks,
    store_location,
    todo_frames,
)
from napari_xray.batch.worker import WORKER_ENVIRONMENT, build_graph, check_workers
from napari_xray.errors import BatchError
from napari_xray.io.store import STATUS_ARRAY, STATUS_DONE, STATUS_TODO

__all__ = ["BatchSummary", "dask_client", "run_batch"]

# How long to wait for a worker to join an existing cluster.
WORKER_WAIT_SECONDS = 60.0
_LAST_STATE = {
    "running": "it was killed",
    "interrupted": "it was interrupted",
    "stopped": "it stopped on an error",
}


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
    # multiprocessing's resource tracker unblocks SIGINT in the thread that first
    # starts it; started here, it leaves the cluster's threads as they are made.
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    opened = ExitStack()
    try:
        # Starting and closing a cluster cannot be interrupted half-way (that leaves
        # worker processes printing tracebacks and a cluster that fails to close at
        # exit): Ctrl-C waits until the cluster is up, or closed.
        with _interrupts_deferred(), dask.config.set(WORKER_ENVIRONMENT):
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # the scheduler's small HTTP endpoint: any free port on 127.0.0.1, never :8787
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                # task errors reach the client as exceptions; worker shutdown chatter is noise
                silence_logs=logging.CRITICAL,
            )
            opened.callback(cluster.close)
            client = Client(cluster, set_as_default=False)
            opened.callback(client.close)
        yield client, "local"
    finally:
        with _interrupts_deferred():
            opened.close()


@contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C back until the block ends, then act on it as the handler in place would.

    SIGINT is also blocked in this thread, so the threads and worker processes
    started inside the block never receive it (they inherit the blocked mask): a
    terminal's Ctrl-C reaches only this process, which stops them cleanly.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    blocking = hasattr(signal, "pthread_sigmask")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if blocking else None
    try:
        yield
    finally:
        if blocking:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # runs a held handler now
        signal.signal(signal.SIGINT, previous)
    if pending and previous is not signal.SIG_IGN:
        if callable(previous):
            previous(signal.SIGINT, None)
        raise KeyboardInterrupt


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
    verify: bool = False,
    progress: bool = True,
    where: str | None = None,
    entries: str | os.PathLike | None = None,
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
        ``"HxW"``: the frame size (default: the most common one among the inputs'
        headers; inputs of other sizes are reported as failures).
    scheduler_address, scheduler_file, workers, client
        Where to run: an existing client, a scheduler, or a LocalCluster of
        ``workers`` processes (default: one per core). ``DASK_SCHEDULER_ADDRESS``
        is used when none of these is given.
    strict
        Stop at the first bad file (it is still recorded in the report; frames
        already done stay done) and raise :class:`~napari_xray.errors.BatchError`.
    overwrite
        Delete an existing napari-xray store at ``out`` first.
    verify
        Read back every done frame's chunks (checksums) and compare its input with
        the recorded fingerprint (size and content hash); recompute what is damaged
        or changed. Without it, only inputs whose size or mtime changed are
        recomputed.
    progress
        Show a progress bar (tqdm, on stderr).
    where
        Keep only the inputs whose ChestX-ray8 entry row meets these conditions
        (``"finding=Effusion,view=PA"``; see
        :func:`napari_xray.io.chestxray8.parse_where`).
    entries
        The entry file (``Data_Entry_2017.csv``); default: beside the first input,
        else in ``$NAPARI_XRAY_CHESTXRAY8_DIR``. Its rows for the inputs are kept
        in a new store.
    log
        Called with one-line messages (default: print to stderr).

    Returns
    -------
    BatchSummary

    Raises
    ------
    BatchError
        User errors (inputs, options, incompatible store, another run holding the
        store's lock, no workers, a bad file under ``strict``, a task that failed
        on the cluster).
    KeyboardInterrupt
        On Ctrl-C, after cancelling the work and writing the report; its message
        says how many frames are done. The store stays consistent and a rerun
        finishes it.
    """
    if log is None:
        def log(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

    inputs = list(inputs)
    folders = [p for p in map(Path, map(os.fspath, inputs)) if p.is_dir()]
    files, chestxray8 = select_by_entries(discover_inputs(inputs), where, entries, log, folders)
    keys = parse_filters(filters)
    resolved = parse_params(params, keys)
    store = store_location(out)
    local = is_local_store(store)
    with StoreLock(store, log) if local else nullcontext():
        if local:
            for name in remove_leftovers(store):
                log(f"removed {name}, left beside the store by a run that was killed")
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
            chestxray8=chestxray8,
            log=log,
        )
        summary = BatchSummary(store=os.fspath(out), n_frames=plan.n_frames)
        todo = _frames_to_do(plan, group, files, summary, verify, log)
        if todo.size == 0:
            log(f"{out}: all {plan.n_frames} frames are already done")
            return summary
        _run(plan, group, files, todo, summary, verify=verify, client=client,
             where=(scheduler_address, scheduler_file, workers), strict=strict,
             progress=progress, log=log)
    return summary


def _frames_to_do(plan: BatchPlan, group, files: Sequence[Path], summary: BatchSummary,
                  verify: bool, log: Callable[[str], None]) -> np.ndarray:
    """The frames this run computes: not done, input changed, damaged status (or all).

    Done frames whose input changed size or mtime, or whose status or fingerprint
    chunk is damaged, are first set back to "to do" in the store, so a kill
    during their recomputation never leaves them marked done with mixed results.
    """
    last = (dict(group.attrs).get("report") or {}).get("last_run") or {}
    if last and last.get("state") != "complete" and is_local_store(plan.store):
        removed = remove_partial_files(plan.store)
        log(
            "the previous run of this store did not finish "
            f"({_LAST_STATE.get(last.get('state'), last.get('state'))}); resuming"
            + (f" (removed {removed} partial chunk file(s))" if removed else "")
        )
    status, damaged = read_status_blocks(group, plan)
    prints, damaged_prints = read_blocks(group[FINGERPRINT_ARRAY], plan.n_frames,
                                         plan.task_frames)
    for start in sorted({*damaged, *damaged_prints}):
        stop = min(start + plan.task_frames, plan.n_frames)
        log(f"the status or fingerprints of frames {start}–{stop - 1} are damaged; "
            "computing those frames again")
        status[start:stop] = STATUS_TODO
    done = np.flatnonzero(status == STATUS_DONE)
    changed = changed_inputs([str(p) for p in files], prints, done)
    if changed:
        names = ", ".join(files[i].name for i in changed[:10])
        more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
        log(f"{len(changed)} input(s) changed since they were done ({names}{more}); "
            "computing them again")
        status[changed] = STATUS_TODO
        summary.recomputed.extend(
            {"index": int(i), "file": files[i].name, "reason": "input changed since it was done"}
            for i in changed
        )
    for block in sorted({int(i) // plan.task_frames for i in changed} | {
            s // plan.task_frames for s in (*damaged, *damaged_prints)}):
        start, stop = plan.block_bounds(block)
        group[STATUS_ARRAY][start:stop] = status[start:stop]
    summary.already_done = int(np.count_nonzero(status == STATUS_DONE))
    if verify:
        return np.arange(plan.n_frames, dtype=np.int64)
    return todo_frames(plan, status)


def _run(plan: BatchPlan, group, files: Sequence[Path], todo: np.ndarray,
         summary: BatchSummary, *, verify: bool, client, where, strict: bool, progress: bool,
         log: Callable[[str], None]) -> None:
    """Compute ``todo`` on the cluster and write the report, also after an error or Ctrl-C."""
    source_paths = [str(p) for p in files]
    report = dict(group.attrs).get("report") or {}
    run_info: dict[str, Any] = {"started": timestamp(), "state": "running",
                                "frames": int(todo.size), "verify": bool(verify)}
    group.attrs["report"] = dict(report, last_run=run_info)
    failures: dict[int, str] = {}
    state = "stopped"
    t_start = time.perf_counter()
    try:
        with _client_for(client, *where, log) as (cl, address):
            summary.startup_seconds = time.perf_counter() - t_start
            summary.scheduler = address
            summary.workers, summary.threads = check_workers(
                cl, plan, source_paths[int(todo[0])], local=address == "local"
            )
            graph = build_graph(plan, todo, source_paths, verify=verify)
            t0 = time.perf_counter()
            try:
                _compute(cl, graph, summary, failures, strict, progress, files)
            finally:
                summary.seconds = time.perf_counter() - t0
        state = "complete"
    except KeyboardInterrupt:
        state = "interrupted"
    finally:
        # Written after the cluster is closed, so no task still changes the status.
        summary.interrupted = state != "complete"
        run_info.update(run_record(summary, state))
        final = write_report(group, plan, files, failures, run_info)
    if state == "interrupted":
        raise KeyboardInterrupt(
            f"{final['done']} of {final['frames']} frames are done and the store is "
            "consistent; rerun the same command to finish it"
        )


@contextmanager
def _client_for(client, scheduler_address, scheduler_file, workers, log):
    """``(client, where)``: the given client, else one from :func:`dask_client`."""
    if client is not None:
        yield client, str(getattr(client.scheduler, "address", "client"))
        return
    with dask_client(scheduler_address, scheduler_file, workers, log) as pair:
        yield pair


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
                if result.verified:
                    summary.verified += 1
                    continue
                if result.note:
                    summary.recomputed.append({"index": result.index,
                                               "file": files[result.index].name,
                                               "reason": result.note})
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
