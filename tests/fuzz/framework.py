"""The fuzz suite's common parts: outcomes, classes, tallies and the README table.

A fuzz *class* (:class:`FuzzClass`) is a name and a ``run(seed, count)``
function yielding one :class:`Outcome` per case: ``"clear error"``,
``"right answer"`` or ``"failure"`` with the reason. How a class runs its cases
(in-process, in a worker process with a memory cap, as killed subprocesses) is
its own business; :mod:`fuzz.registry` lists the classes, ``test_fuzz_*`` run
them under pytest and ``scripts/fuzz_report.py`` prints :func:`markdown_table`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

CLEAR_ERROR = "clear error"
RIGHT_ANSWER = "right answer"
FAILURE = "failure"


@dataclass(frozen=True)
class Outcome:
    """What one case gave."""

    case: str
    verdict: str  # CLEAR_ERROR | RIGHT_ANSWER | FAILURE
    detail: str = ""  # why it failed (or the error message)
    seconds: float = 0.0


@dataclass(frozen=True)
class FuzzClass:
    """A family of generated cases and how to run them."""

    name: str
    run: Callable[[int, int | None], Iterator[Outcome]]  # (seed, count or None: the default)
    seed: int
    description: str = ""


@dataclass
class Tally:
    """The outcomes of one class, counted."""

    name: str
    cases: int = 0
    clear_errors: int = 0
    right_answers: int = 0
    failures: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, outcome: Outcome) -> None:
        """Count one outcome."""
        self.cases += 1
        if outcome.verdict == CLEAR_ERROR:
            self.clear_errors += 1
        elif outcome.verdict == RIGHT_ANSWER:
            self.right_answers += 1
        else:
            self.failures.append(outcome)


def run_class(fuzz_class: FuzzClass, count: int | None = None, seed: int | None = None) -> Tally:
    """Run every case of ``fuzz_class`` and count the outcomes."""
    tally = Tally(fuzz_class.name)
    start = time.perf_counter()
    for outcome in fuzz_class.run(fuzz_class.seed if seed is None else seed, count):
        tally.add(outcome)
    tally.seconds = time.perf_counter() - start
    return tally


def markdown_table(tallies: Iterable[Tally]) -> str:
    """The README's table: class, cases, clear errors, right answers, failures, seconds."""
    lines = [
        "| class | cases | clear errors | right answers | failures | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total = Tally("total")
    for tally in tallies:
        lines.append(
            f"| {tally.name} | {tally.cases} | {tally.clear_errors} | {tally.right_answers} | "
            f"{len(tally.failures)} | {tally.seconds:.1f} |"
        )
        total.cases += tally.cases
        total.clear_errors += tally.clear_errors
        total.right_answers += tally.right_answers
        total.failures += tally.failures
        total.seconds += tally.seconds
    lines.append(
        f"| **total** | {total.cases} | {total.clear_errors} | {total.right_answers} | "
        f"{len(total.failures)} | {total.seconds:.1f} |"
    )
    return "\n".join(lines)


def failure_report(tally: Tally, limit: int = 20) -> str:
    """The first ``limit`` failures of a tally, one a line."""
    shown = [f"{o.case}: {o.detail}" for o in tally.failures[:limit]]
    more = len(tally.failures) - len(shown)
    return "\n".join(shown + ([f"… and {more} more"] if more > 0 else []))
