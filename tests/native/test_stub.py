"""The hand-written `_native.pyi` lists exactly what `fastroute._native` exports (mypy.stubtest)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest


def test_stub_matches_the_built_module() -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy not installed")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "fastroute._native"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
