"""The fuzz suite: seeded, bounded generated cases, each a clear error or the right answer.

To add a class, write a module here with a :class:`fuzz.framework.FuzzClass`
(a name, a seed and ``run(seed, count)`` yielding one
:class:`~fuzz.framework.Outcome` per case) and list it in :mod:`fuzz.registry`;
``scripts/fuzz_report.py`` then prints it in the table and ``test_fuzz_classes``
runs it.
"""
