"""Background helpers: idle-priority threads."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from fastroute.background import idle_thread_priority


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE is Linux-only")
def test_idle_thread_priority_moves_only_the_calling_thread() -> None:
    seen: dict[str, int | bool] = {}

    def body() -> None:
        seen["changed"] = idle_thread_priority()
        seen["policy"] = os.sched_getscheduler(0)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == {"changed": True, "policy": os.SCHED_IDLE}
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the test's own thread is untouched
