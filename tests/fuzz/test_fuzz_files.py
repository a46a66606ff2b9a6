"""The file fuzz classes under pytest: mutated PNGs and DICOMs, a clear error or the right answer.

Each case is read by ``read_xray`` in a worker process whose address space is
capped (:data:`fuzz.file_classes.MEMORY_CAP`); the file must be unchanged
afterwards (see :mod:`fuzz.file_classes` and :mod:`fuzz.file_worker`).
"""

from __future__ import annotations

import pytest

from .dicom_cases import dicom_cases
from .file_classes import DICOM_BYTES, PNG_BYTES, real_frames
from .framework import failure_report, run_class
from .png_cases import png_cases


@pytest.mark.parametrize("fuzz_class", [PNG_BYTES, DICOM_BYTES], ids=lambda c: c.name)
def test_mutated_files_give_a_clear_error_or_the_right_answer(fuzz_class):
    tally = run_class(fuzz_class)
    assert not tally.failures, (
        f"{len(tally.failures)} of {tally.cases} cases failed:\n" + failure_report(tally)
    )
    # The generator must exercise both outcomes, or it tests nothing.
    assert tally.clear_errors > tally.cases // 4 and tally.right_answers > tally.cases // 6, tally


def test_the_png_cases_use_the_real_frames():
    assert real_frames(), "the nine real frames are missing: the PNG class would mutate only toys"
    names = [case.name for case in png_cases(PNG_BYTES.seed, 300, real_frames())]
    assert sum(name.startswith("00000011_") for name in names) > 50


@pytest.mark.parametrize("seed", [1, 2])
def test_the_cases_are_seeded(seed):
    def fingerprint(cases):
        return [(c.name, len(c.data), c.expect) for c in cases]

    frames = real_frames()
    assert fingerprint(png_cases(seed, 60, frames)) == fingerprint(png_cases(seed, 60, frames))
    assert fingerprint(dicom_cases(seed, 60)) == fingerprint(dicom_cases(seed, 60))
