#!/usr/bin/env bash
# Set up everything the tests need (see scripts/setup.sh), then run the test suite
# in real napari viewers on a virtual display. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# pytest-xvfb starts Xvfb for the session; napari then draws with Mesa's software OpenGL.
exec .venv/bin/python -m pytest "$@"
