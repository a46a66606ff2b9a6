"""``python -m napari_xray``: the same command line as ``napari-xray``."""

import sys

from .cli import main

sys.exit(main())
