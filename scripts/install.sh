#!/usr/bin/env bash
# Installs everything fastroute needs on a fresh Debian/Ubuntu machine: system packages (Redis and
# Chromium for the tests), the Rust extension (built by maturin, release mode) and the Python deps.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if command -v apt-get >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    build-essential pkg-config ca-certificates curl redis-server chromium >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "install.sh: no Rust toolchain found; install one with rustup (https://rustup.rs), then rerun." >&2
  exit 1
fi

# --no-build-isolation below reaches the dependencies built from source too (hnswlib ships only an sdist), so
# their build requirements come first: maturin for ours, numpy + pybind11 + setuptools + wheel for hnswlib.
python3 -m pip install -q --upgrade pip maturin numpy pybind11 setuptools wheel
# Editable install: builds fastroute._native in release mode and installs the runtime + dev deps.
python3 -m pip install -q --no-build-isolation -e '.[dev]'
python3 -c "import fastroute._native as n; print('fastroute native module', n.__version__, 'ready')"
