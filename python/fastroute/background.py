"""Background asyncio tasks owned by a component: stopping one at shutdown.

Must not import aiohttp. One place for the cancel-then-wait steps every owner of a background task needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancels `task` (if any) and waits until it has finished. A `CancelledError` met while waiting is
    swallowed, so the owner's own shutdown work after this call (e.g. a final flush) still runs."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
