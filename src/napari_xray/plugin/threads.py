"""Where napari-xray's background workers run: a private Qt thread pool.

napari's ``create_worker`` starts workers on ``QThreadPool.globalInstance()``.
Qt uses that same global pool for its own parallel work, e.g. converting images
for the activity dock's animated "busy" icon, and waits for it while the GUI
thread still holds Python's GIL. With two cores the global pool has two
threads; if both run Python workers (which need the GIL to continue) the GUI
thread and the workers wait for each other forever. Measured here: a second
parameter change while the first stack was still computing froze the viewer.

So napari-xray builds its workers with napari's ``create_worker`` (progress
bar, activity dock and error relaying unchanged) but starts them on its own
pool, which leaves the global pool free for Qt. The pool keeps one core for
the GUI thread.
"""

from __future__ import annotations

import os

__all__ = ["running_workers", "start_worker", "wait_for_workers"]

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
