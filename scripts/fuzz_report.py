"""Run every fuzz class and print the README's table (Markdown).

    python scripts/fuzz_report.py [--count N] [--seed S] [--class NAME ...]

Each class runs its default number of seeded cases (or ``--count``); the table
lists cases, clear errors, right answers and failures (which must be 0), then the
first failures if there are any. Exit status 1 when a case failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz.framework import failure_report, markdown_table, run_class  # noqa: E402
from fuzz.registry import fuzz_classes  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the chosen classes, print the table and any failures; 1 if a case failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, help="cases per class (default: each class's own)")
    parser.add_argument("--seed", type=int, help="seed for every class (default: each class's own)")
    parser.add_argument("--class", dest="names", action="append", help="run only this class")
    args = parser.parse_args(argv)
    classes = [c for c in fuzz_classes() if not args.names or c.name in args.names]
    tallies = []
    for fuzz_class in classes:
        print(f"running {fuzz_class.name} …", file=sys.stderr, flush=True)
        tallies.append(run_class(fuzz_class, args.count, args.seed))
    print(markdown_table(tallies))
    failed = [t for t in tallies if t.failures]
    for tally in failed:
        print(f"\n{tally.name}: {len(tally.failures)} failures\n{failure_report(tally)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
