"""Run ``napari-xray`` with every batch frame read late, so a test can stop a run half-way.

    python tests/batch/batch_with_slow_reads.py SECONDS batch INPUT … --out STORE.zarr …

The product has no delay of its own: this script registers itself as Dask's
worker preload (``distributed.worker.preload``, set through the environment
before Dask is imported), which wraps the batch worker's frame reader to
sleep SECONDS first in every worker process a local cluster starts (the frames
are read there, never in this process). Then it runs
:func:`napari_xray.cli.main` on the remaining arguments, having imported nothing
else, so Ctrl-C reaches ``main`` as early as it does in ``napari-xray`` itself.
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

    read = worker.read_frame_with_fingerprint
    if getattr(read, "slowed_down", False):
        return

    def slow_read(*args, **kwargs):
        time.sleep(seconds)
        return read(*args, **kwargs)

    slow_read.slowed_down = True
    worker.read_frame_with_fingerprint = slow_read


def dask_setup(worker) -> None:
    """Dask's preload hook: runs in every worker process before it takes tasks."""
    slow_down_reads(float(os.environ[DELAY_ENV]))


if __name__ == "__main__":
    delay, *argv = sys.argv[1:]
    os.environ[DELAY_ENV] = delay
    os.environ["DASK_DISTRIBUTED__WORKER__PRELOAD"] = json.dumps([os.path.abspath(__file__)])

    from napari_xray.cli import main

    sys.exit(main(argv))
