"""The user-facing errors of napari-xray.

Every problem a user can fix is an :class:`XrayError` (a ``ValueError``) whose
message names the file or setting and says what to do. The command line turns
it into one line and exit status 2; napari shows it and keeps running.
"""

from __future__ import annotations

import os

__all__ = ["BatchError", "CompareError", "SampleDataError", "XrayError", "XrayReadError"]


class XrayError(ValueError):
    """A problem the user can fix; the message says what it is and what to do.

    ``path`` is the offending file or folder, or ``None`` when there is none.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = None if path is None else os.fspath(path)


class XrayReadError(XrayError):
    """A file or folder claimed by the X-ray reader could not be read."""


class SampleDataError(XrayError):
    """The sample frames could not be obtained or failed their hash check."""


class CompareError(XrayError):
    """The headless comparison could not run on its inputs."""


class BatchError(XrayError):
    """A batch run cannot go on: bad inputs, an incompatible store, no workers …"""
