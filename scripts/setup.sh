#!/usr/bin/env bash
# Set up napari-xray in ./.venv on a Debian/Ubuntu machine (or any machine with Python ≥ 3.10).
#
#   bash scripts/setup.sh            # the plugin, napari and the test tools
#
# Installs, when missing: the system libraries napari needs to draw without a
# screen (Xvfb, Mesa OpenGL, Qt's xcb libraries; via apt-get when run as root),
# then a virtual environment with the package (editable) and its extras.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(
  python3 python3-venv libglib2.0-0
  xvfb xauth libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0
  libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1
)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
elif ! command -v Xvfb >/dev/null 2>&1; then
  missing=("${SYSTEM_PACKAGES[@]}")
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: napari's tests need a virtual display and OpenGL; these packages are missing:" >&2
    echo "  ${missing[*]}" >&2
    echo "setup: install them (e.g. 'sudo apt-get install ${missing[*]}') and run this again." >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "setup: creating .venv with $($PYTHON --version)"
  rm -rf .venv
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[testing]"
echo "setup: done. Try: .venv/bin/napari-xray compare --out results"
