"""napari-xray's own Qt thread pool for background workers.

Workers are built with napari's ``create_worker`` (progress bar, activity dock,
error relaying) but started here rather than on ``QThreadPool.globalInstance()``,
which Qt also uses for its own work while the GUI thread holds the GIL: Python
workers filling that pool can deadlock the viewer. The pool leaves one core for
the GUI thread.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading

__all__ = ["import_in_background", "running_workers", "start_worker", "wait_for_workers"]

_POOL = None
_RUNNING: set = set()


def _pool():
    global _POOL
    if _POOL is None:
        from qtpy.QtCore import QCoreApplication, QThreadPool

        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(max(1, min(4, (os.cpu_count() or 2) - 1)))
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(lambda: wait_for_workers(2000))
    return _POOL


def start_worker(worker) -> None:
    """Start a superqt/napari ``WorkerBase`` on napari-xray's pool.

    The worker is kept alive (referenced) until its ``finished`` signal.
    """
    _RUNNING.add(worker)
    worker.finished.connect(lambda: _RUNNING.discard(worker))
    _pool().start(worker)


def running_workers() -> list:
    """Workers started by :func:`start_worker` that have not finished yet."""
    return list(_RUNNING)


def wait_for_workers(msecs: int = -1) -> bool:
    """Ask every running worker to quit and wait up to ``msecs`` ms for the pool.

    Returns
    -------
    bool
        True when every worker has finished.
    """
    for worker in list(_RUNNING):
        quit_ = getattr(worker, "quit", None)
        if quit_ is not None:
            quit_()
    if _POOL is None:
        return True
    return bool(_POOL.waitForDone(msecs))


def import_in_background(*modules: str) -> threading.Thread | None:
    """Import those of ``modules`` not yet imported, in a daemon thread; returns it.

    napari imports some libraries the first time it needs them, in the GUI
    thread (pandas for the first Labels layer); imported here beforehand, they
    do not freeze the window then. ``None`` when all are imported already.
    """
    missing = [name for name in modules if name not in sys.modules]
    if not missing:
        return None

    def run() -> None:
        for name in missing:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - napari reports it where the module is used
                pass

    thread = threading.Thread(target=run, name="napari-xray imports", daemon=True)
    thread.start()
    return thread
