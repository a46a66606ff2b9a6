"""One batch run per store at a time: the lock file ``STORE.zarr.lock`` beside a local store.

The lock is an exclusive ``flock`` on that file, so the kernel releases it when its
owner dies, however it dies: a killed run never leaves a store locked. The file
records the owner's PID, host and start time, which the refusal message names.
A file left by a killed run (its content names a process that is gone) is taken
over with a notice. Stores behind a URL (``s3://…``) are not locked, nor are
stores on systems without ``fcntl`` (Windows).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from napari_xray.errors import BatchError

__all__ = ["LOCK_SUFFIX", "StoreLock", "lock_path", "process_alive"]

#: Appended to a local store's path to name its lock file.
LOCK_SUFFIX = ".lock"


def lock_path(store: str) -> str:
    """The lock file of the local store ``store`` (``STORE.zarr`` → ``STORE.zarr.lock``)."""
    return store.rstrip("/\\") + LOCK_SUFFIX


def process_alive(pid: int) -> bool:
    """Is there a process ``pid`` on this host (one we may not signal counts as alive)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _describe(owner: dict[str, Any]) -> str:
    where = owner.get("host") or "an unknown host"
    return f"PID {owner.get('pid', '?')} on {where}, started {owner.get('started', '?')}"


class StoreLock:
    """Context manager holding the lock of one local store for a whole run.

    Raises
    ------
    BatchError
        On entering, when another live run holds the lock (the message names its
        PID, host and start time), or the lock file cannot be created.
    """

    def __init__(self, store: str, log: Callable[[str], None] = lambda message: None):
        self.path = lock_path(store)
        self.store = store
        self.log = log
        self._fd: int | None = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (see the class); a no-op if it is already held by this object."""
        if self._fd is not None:
            return
        try:
            import fcntl
        except ImportError:  # Windows: no flock; runs are not serialised there
            self.log(f"cannot lock {self.store} on this system; run one batch per store")
            return

        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise BatchError(
                    f"cannot create the lock file {self.path} ({exc.strerror}); the folder "
                    "of --out must be writable"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                owner = _read_owner(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise BatchError(
                        f"another napari-xray batch is running on {self.store} "
                        f"({_describe(owner)}); wait for it to finish or stop it "
                        f"(kill {owner.get('pid', '<PID>')}), then rerun"
                    ) from None
                raise BatchError(
                    f"cannot lock {self.path} ({exc.strerror}); the filesystem of --out "
                    "does not support file locks"
                ) from None
            # The previous holder may have removed the file between our open and our
            # lock: then we hold a lock on a deleted file; start again.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_owner(fd)
        if previous:
            pid = previous.get("pid")
            here = previous.get("host") == socket.gethostname()
            gone = here and isinstance(pid, int) and not process_alive(pid)
            self.log(
                f"took over the lock of a run that did not finish ({_describe(previous)}"
                + ("; that process is gone" if gone else "")
                + ")"
            )
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv[:1] + sys.argv[1:8]),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and release the lock (unlinked while still held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(fd)


def _read_owner(fd: int) -> dict[str, Any]:
    """The owner recorded in an open lock file, ``{}`` when empty or unreadable."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        owner = json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}
