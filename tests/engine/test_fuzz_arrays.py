"""The array fuzz class: seeded random arrays through every operation (see fuzz_arrays)."""

from __future__ import annotations

import collections

import pytest
from fuzz_arrays import CLEAR_ERROR, RIGHT_ANSWER, array_cases, check_array_case

SEED = 20261201
COUNT = 400


def test_random_arrays_give_a_clear_error_or_the_right_answer():
    outcomes = collections.Counter()
    failures = []
    for case in array_cases(SEED, COUNT):
        try:
            outcomes[check_array_case(case)] += 1
        except AssertionError as error:
            failures.append(f"{case.name}: {error}")
    assert not failures, f"{len(failures)} of {COUNT} cases failed:\n" + "\n".join(failures[:20])
    # The generator must exercise both outcomes, or it tests nothing.
    assert outcomes[CLEAR_ERROR] > COUNT // 10 and outcomes[RIGHT_ANSWER] > COUNT // 3, outcomes


@pytest.mark.parametrize("seed", [1, 2])
def test_the_cases_are_seeded(seed):
    first = [c.name for c in array_cases(seed, 20)]
    assert first == [c.name for c in array_cases(seed, 20)]
