"""The array fuzz class of ``tests/engine/fuzz_arrays.py`` as a :class:`~fuzz.framework.FuzzClass`.

The cases and their checks live with the engine's tests (which run them under
pytest); this adapter only lets ``scripts/fuzz_report.py`` count them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from .framework import FAILURE, FuzzClass, Outcome

SEED = 20261201  # the engine test's seed and count
COUNT = 400


def _run(seed: int, count: int | None) -> Iterator[Outcome]:
    from engine.fuzz_arrays import array_cases, check_array_case

    for case in array_cases(seed, count or COUNT):
        start = time.perf_counter()
        try:
            verdict, detail = check_array_case(case), ""
        except AssertionError as error:
            verdict, detail = FAILURE, str(error)
        yield Outcome(case.name, verdict, detail, time.perf_counter() - start)


ARRAYS = FuzzClass(
    "arrays × operations",
    _run,
    seed=SEED,
    description="every real dtype, memory layouts, odd shapes and values through each operation",
)
