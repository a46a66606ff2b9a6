"""Run ``napari-xray`` with every batch frame read late, so a test can stop a run half-way.

    python tests/batch_with_slow_reads.py SECONDS batch INPUT … --out STORE.zarr …

The product has no delay of its own: this script wraps
``napari_xray.batch.worker.read_frame`` to sleep SECONDS first, here and, as
Dask's worker preload (``distributed.worker.preload``, set through the
environment before Dask is imported), in every worker process a local cluster
starts. Then it runs :func:`napari_xray.cli.main` on the remaining arguments.
"""

from __future__ import annotations

import json
import os
import sys
import time

DELAY_ENV = "NAPARI_XRAY_TEST_READ_DELAY"


def slow_down_reads(seconds: float) -> None:
    """Make the batch worker sleep ``seconds`` before reading each frame (once per process)."""
    from napari_xray.batch import worker

    read_frame = worker.read_frame
    if getattr(read_frame, "slowed_down", False):
        return

    def slow_read_frame(*args, **kwargs):
        time.sleep(seconds)
        return read_frame(*args, **kwargs)

    slow_read_frame.slowed_down = True
    worker.read_frame = slow_read_frame


def dask_setup(worker) -> None:
    """Dask's preload hook: runs in every worker process before it takes tasks."""
    slow_down_reads(float(os.environ[DELAY_ENV]))


if __name__ == "__main__":
    delay, *argv = sys.argv[1:]
    os.environ[DELAY_ENV] = delay
    os.environ["DASK_DISTRIBUTED__WORKER__PRELOAD"] = json.dumps([os.path.abspath(__file__)])
    slow_down_reads(float(delay))

    from napari_xray.cli import main

    sys.exit(main(argv))
