"""The kill, interrupt and concurrency fuzz classes of compare and batch (:mod:`fuzz.jobs`)."""

from __future__ import annotations

import pytest

from .framework import failure_report, run_class
from .jobs import JOB_CLASSES

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("fuzz_class", JOB_CLASSES, ids=lambda c: c.name)
def test_job_class_has_no_failures(fuzz_class):
    tally = run_class(fuzz_class)
    assert tally.cases > 0
    assert not tally.failures, failure_report(tally)
