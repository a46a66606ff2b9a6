#!/usr/bin/env bash
# Set up everything the tests need (see scripts/setup.sh), then run the test suite
# in real napari viewers on a virtual display. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

if [ $# -eq 0 ]; then
  # The engine runs on every OpenCV that pyproject.toml allows (>=4.10,<6): pip
  # resolves the newest for the suite below; the engine's tests also run on the
  # oldest, installed beside the venv and put first on the path.
  OPENCV_OLDEST=4.10.0.84
  oldest=".venv/opencv-$OPENCV_OLDEST"
  if [ ! -d "$oldest/cv2" ]; then
    .venv/bin/python -m pip install --quiet --no-deps --target "$oldest" \
      "opencv-python-headless==$OPENCV_OLDEST"
  fi
  echo "test: the engine on OpenCV $OPENCV_OLDEST"
  PYTHONPATH="$oldest" .venv/bin/python -m pytest -q tests/engine \
    --opencv-version "${OPENCV_OLDEST%.*}"
fi

# pytest-xvfb starts Xvfb for the session; napari then draws with Mesa's software OpenGL.
exec .venv/bin/python -m pytest "$@"
