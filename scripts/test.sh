#!/usr/bin/env bash
# The test command (README and .ci/run): Rust core tests and lints, Python lints and types, then the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --quiet
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --quiet --all-targets --features python -- -D warnings
fi
python3 -m ruff check python tests benchmarks scripts
python3 -m mypy
python3 -m pytest -q "$@"
