"""`BackgroundIndexer`: moves the semantic cache's HNSW inserts off the event loop (asyncio task + executor).

An insert costs hundreds of microseconds once the cache holds ~100k entries, too long for the event loop.
With the indexer running, `SemanticCache.store` only queues the vector (`defer_index`; `on_unindexed`
wakes this task), and this task drains the queue in batches in the default executor (the index releases
the GIL while it works), handing each batch back on the loop's thread. Until then lookups compare the
waiting vectors one by one, so a stored answer is served semantically at once. Owns no cache state.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from fastroute.background import idle_thread, stop_task
from fastroute.cache.semantic_cache import SemanticCache

__all__ = ["BackgroundIndexer"]

log = logging.getLogger(__name__)
COALESCE_S = 0.005  # how long a woken indexer waits for more vectors before handing a batch to a thread


class BackgroundIndexer:
    """Drains `cache.take_index_batch()` in a worker thread whenever `wake()` is called.

    Args:
        cache: the cache to index; `start` switches it to deferred indexing, `close` indexes what is left
            and switches it back.
        idle: run the inserts in a thread at idle CPU priority (`fastroute.background.idle_thread`). On a
            core shared with the event loop, an insert batch running when a request's bytes arrive held the
            core for up to its scheduler slice (`perf sched`: ~1-3 % of requests at one connection waited
            over 0.5 ms for it); at idle priority the loop takes the core at once. The backlog stays bounded
            even when the core is never idle: past the cache's waiting cap, `store` indexes on the loop.
    """

    def __init__(self, cache: SemanticCache, *, idle: bool = True) -> None:
        self.cache = cache
        self.idle = idle
        self._executor: ThreadPoolExecutor | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.indexed = 0
        self.coalesce_s = COALESCE_S

    async def start(self) -> None:
        if self.idle:
            self._executor = idle_thread("fastroute-indexer")
        self.cache.defer_index = True
        self.cache.on_unindexed = self._wake.set
        self._task = asyncio.create_task(self._run(), name="fastroute-cache-indexer")

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.cache.defer_index = False
        self.cache.on_unindexed = None
        self.cache.flush_index()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            if self.coalesce_s > 0:
                # Let a few stores gather so one thread hand-off indexes several vectors (a hand-off per
                # stored answer costs about as much CPU as the insert); lookups see waiting vectors meanwhile.
                await asyncio.sleep(self.coalesce_s)
            self._wake.clear()
            while (batch := self.cache.take_index_batch()) is not None:
                try:
                    await loop.run_in_executor(self._executor, batch.run)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a failed insert costs semantic hits, never a request
                    log.exception("cache indexer: inserting %d vectors failed", len(batch))
                finally:
                    self.cache.finish_index_batch(batch)
                self.batches += 1
                self.indexed += len(batch)
