"""Background work owned by a component: stopping its asyncio task at shutdown, and idle-priority threads.

Must not import aiohttp. One place for the cancel-then-wait steps every owner of a background task needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancels `task` (if any) and waits until it has finished. A `CancelledError` met while waiting is
    swallowed, so the owner's own shutdown work after this call (e.g. a final flush) still runs."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def idle_thread_priority() -> bool:
    """Moves the calling thread to the SCHED_IDLE class (Linux): it runs only while no normal-priority thread
    wants its core. Meant as a `ThreadPoolExecutor` initializer for deferrable work whose backlog is bounded:
    a request thread woken while such a thread computes takes the core at once instead of waiting for the
    scheduler to end the other's slice. False where the platform does not allow it (the thread stays as it was).
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: the calling thread
    except (AttributeError, OSError):
        return False
    return True
