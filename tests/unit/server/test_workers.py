"""`supervise`: the exit code when a worker fails before it is listening (forks real processes)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

from fastroute.server.workers import supervise

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def test_a_worker_failing_at_start_up_fails_the_server() -> None:
    def serve_one(reserved: socket.socket, ready: Callable[[str], None]) -> None:
        raise RuntimeError("database is locked")

    assert supervise(2, "127.0.0.1", 0, serve_one) == 1
