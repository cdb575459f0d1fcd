"""Background work owned by a component: stopping an asyncio task at shutdown, and a thread that yields its
core to the event loop.

Must not import aiohttp. One place for the cancel-then-wait steps every owner of a background task needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancels `task` (if any) and waits until it has finished. A `CancelledError` met while waiting is
    swallowed, so the owner's own shutdown work after this call (e.g. a final flush) still runs."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def yield_to_others() -> None:
    """Makes the calling thread run only when its core has nothing else to do (Linux `SCHED_IDLE`; any
    thread may lower its own priority). Elsewhere, or if refused, nothing changes."""
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def idle_thread(name: str) -> ThreadPoolExecutor:
    """One worker thread at idle priority: work queued here never delays the event loop's thread on a
    shared core. Only for work whose backlog is bounded elsewhere, since a busy core starves it."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=yield_to_others)
