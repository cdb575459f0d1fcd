#!/usr/bin/env bash
# The test command (README and .ci/run): Rust core tests, type stubs check, then the Python suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --quiet
python3 -m pytest -q "$@"
