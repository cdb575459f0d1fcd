"""`Batched`: runs a fixed list of per-request steps for the requests that reach them in the same turn of the event
loop, one step at a time.

Pure asyncio (must not import aiohttp). Under load, dozens of requests become ready in one turn of the loop.
Running one step (a stage's hook, the routing) for all of them before the next step keeps that step's code
and data in the CPU caches. When each request runs every step itself, interleaved with the rest of its
handling, it finds them cold. At 64 connections on one core, batching the `on_finish` hooks and then the
preparation (hooks, analysis, routing) each cut the gateway's CPU per request by about a tenth; see
benchmarks/results/README.md, session 20.

What stays as it was:
- Each request's steps run in the order given, and `run(ctx)` returns only once they have. A client that
  sends its next request after an answer therefore finds that answer's bookkeeping done.
- `failures="end"` (preparation): a step that raises ends that request there; `run` raises the error, and
  the other requests go on.
- `failures="log"` (bookkeeping): a step that raises is logged, and the request's later steps still run.
- A step that waits on the network (`Step.awaits_io`: a Redis store) would make the rest of its batch wait
  one request at a time, so it runs concurrently over the batch.

With a single request in flight (`run(ctx, alone=True)`), no batch can form, so the steps run at once in the
request's own task: a batch of one would only add a turn of the loop to its latency.

If the awaiting handler is cancelled, the cancellation is handled by mode. In "end" mode the request takes no
further step. In "log" mode its steps still run, because its bookkeeping must happen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Literal, NamedTuple

from fastroute.pipeline.context import RequestContext

log = logging.getLogger("fastroute.pipeline")

_Item = tuple[RequestContext, "asyncio.Future[None]"]


class Step(NamedTuple):
    """`await getattr(target, method)(ctx)`, the method looked up once per batch (so a wrapped one is seen).

    Attributes:
        label: names the step in logs, e.g. `budgets.on_finish`.
        target: the object whose async method runs the step.
        method: that method's name.
        awaits_io: True when the step may wait on the network: it then runs concurrently over a batch.
    """

    label: str
    target: object
    method: str
    awaits_io: bool = False


class Batched:
    """Runs `steps` for each request handed to `run`, batched with the requests queued in the same loop turn."""

    def __init__(self, steps: Sequence[Step], *, failures: Literal["end", "log"]) -> None:
        self.steps = tuple(steps)
        self._log_failures = failures == "log"
        self._queue: list[_Item] = []
        self._task: asyncio.Task[None] | None = None

    async def run(self, ctx: RequestContext, *, alone: bool = False) -> None:
        """Runs every step for `ctx` (batched). In "end" mode, raises what a step raised for it.

        `alone`: the caller knows no other request is in flight, so no batch can form; the steps then run
        at once in the caller's task (a batch of one would only add a turn of the loop to its latency).
        """
        if not self.steps:
            return
        if alone and self._task is None and not self._queue:
            await self._run_alone(ctx)
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.append((ctx, done))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        await done

    async def _run_alone(self, ctx: RequestContext) -> None:
        for step in self.steps:
            if not self._log_failures:
                await getattr(step.target, step.method)(ctx)
                continue
            try:
                await getattr(step.target, step.method)(ctx)
            except Exception as e:
                log.error("%s failed for request %s", step.label, ctx.request_id, exc_info=e)

    async def wait_idle(self) -> None:
        """Returns once every request handed to `run` so far has been through its steps (for shutdown)."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    for step in self.steps:
                        if step.awaits_io and len(batch) > 1:
                            batch = await self._step_concurrently(step, batch)
                        else:
                            batch = await self._step_in_turn(step, batch)
                        if not batch:
                            break
                except BaseException:  # cancelled (shutdown): the waiters of this batch must not hang
                    for _, done in batch:
                        done.cancel()
                    raise
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._task = None

    async def _step_in_turn(self, step: Step, batch: list[_Item]) -> list[_Item]:
        """Runs `step` for each request of `batch` in turn; returns those that go on to the next step."""
        ending = not self._log_failures
        hook = getattr(step.target, step.method)  # looked up per batch, so a wrapped method is seen
        dropped = False
        for item in batch:
            if ending and item[1].cancelled():  # its handler is gone: no further step
                dropped = True
                continue
            try:
                await hook(item[0])
            except Exception as e:
                dropped = self._failed(step, item, e) or dropped
        return [item for item in batch if not item[1].done()] if dropped else batch

    async def _step_concurrently(self, step: Step, batch: list[_Item]) -> list[_Item]:
        """Runs `step` for every request of `batch` at once (it waits on the network); returns those that go on."""
        if not self._log_failures:
            batch = [item for item in batch if not item[1].cancelled()]  # their handlers are gone
        hook = getattr(step.target, step.method)
        dropped = False
        results = await asyncio.gather(*(hook(ctx) for ctx, _ in batch), return_exceptions=True)
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                dropped = self._failed(step, item, result) or dropped
            elif isinstance(result, BaseException):
                raise result
        return [item for item in batch if not item[1].done()] if dropped else batch

    def _failed(self, step: Step, item: _Item, error: Exception) -> bool:
        """Logs the failure or ends the request with it; True when the request leaves the batch."""
        ctx, done = item
        if self._log_failures:
            log.error("%s failed for request %s", step.label, ctx.request_id, exc_info=error)
            return False
        if not done.done():
            done.set_exception(error)
        return True
