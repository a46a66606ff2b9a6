"""``python -m napari_xray``: the same command line as ``napari-xray``."""

import sys

from napari_xray.cli import main

sys.exit(main())
