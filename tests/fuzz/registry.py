"""Every fuzz class, in the order the README's table lists them.

Add a class here (a module in this package, or an adapter like
:mod:`fuzz.array_class` for cases that live elsewhere) to have
``scripts/fuzz_report.py`` run and count it.
"""

from __future__ import annotations

from .framework import FuzzClass


def fuzz_classes() -> list[FuzzClass]:
    """The registered classes (their modules are imported here, not before)."""
    from .array_class import ARRAYS
    from .file_classes import DICOM_BYTES, PNG_BYTES
    from .jobs import JOB_CLASSES

    return [PNG_BYTES, DICOM_BYTES, ARRAYS, *JOB_CLASSES]
