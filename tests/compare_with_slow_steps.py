"""Run ``napari-xray`` with every step that changes the output folder announced and delayed.

    python tests/compare_with_slow_steps.py SECONDS compare INPUT … --out DIR …

The product has no delay of its own: this script wraps ``os.rename``,
``os.replace``, ``shutil.rmtree`` and the atomic exchange of
:mod:`napari_xray.compare` so that each call touching the folder that holds DIR
first prints ``step <n> <what>`` on stderr and sleeps SECONDS. A test reads those
lines and kills the process between two steps. Then it runs
:func:`napari_xray.cli.main` on the remaining arguments.
"""

from __future__ import annotations

import os
import shutil
import sys
import time


def slow_down_steps(seconds: float, out_dir: str) -> None:
    """Announce and delay every rename/replace/rmtree/exchange beside or inside ``out_dir``."""
    from napari_xray import compare

    parent = os.path.dirname(os.path.abspath(out_dir))
    count = [0]

    def touches(*paths) -> bool:
        return any(os.path.abspath(os.fspath(p)).startswith(parent + os.sep) for p in paths)

    def announce(what: str) -> None:
        count[0] += 1
        sys.stderr.write(f"step {count[0]} {what}\n")
        sys.stderr.flush()
        time.sleep(seconds)

    def wrap(module, attribute: str, what: str) -> None:
        function = getattr(module, attribute, None)
        if function is None:  # e.g. a napari-xray without the atomic exchange
            return

        def slow(*args, **kwargs):
            paths = args[:1] if what == "rmtree" else args[:2]
            if touches(*paths):
                announce(f"{what} {os.path.basename(os.fspath(paths[-1]))}")
            return function(*args, **kwargs)

        setattr(module, attribute, slow)

    wrap(os, "rename", "rename")
    wrap(os, "replace", "replace")
    wrap(shutil, "rmtree", "rmtree")
    wrap(compare, "_exchange", "exchange")


if __name__ == "__main__":
    delay, *argv = sys.argv[1:]
    slow_down_steps(float(delay), argv[argv.index("--out") + 1])

    from napari_xray.cli import main

    sys.exit(main(argv))
