"""`ObservabilityStage`: feeds metrics, the request log, the stats book (and traces) from every request.

Must not import aiohttp (the routes module owns HTTP). Sits first among stages, so its `on_finish` runs
last and sees each request's final state. Also tells apart chat requests refused before the pipeline
(unreadable bodies), which no stage sees, from those that reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from fastroute.background import stop_task
from fastroute.catalogue import Catalogue
from fastroute.ledger import Ledger, LedgerRecord, SqliteLedger
from fastroute.observability.metrics import GatewayMetrics
from fastroute.observability.request_log import RequestLog, Sink, rejected_line
from fastroute.observability.settings import ObservabilitySettings
from fastroute.observability.sources import BudgetProbe, HealthProbe
from fastroute.observability.stats import StatsBook
from fastroute.observability.tracing import RequestTracer
from fastroute.observability.worker_share import WorkerShare
from fastroute.pipeline import RequestContext, Stage

log = logging.getLogger("fastroute.observability")
# Where a chat request is, as far as this stage knows (keyed by request id until its response starts).
_IN_PIPELINE, _FINISHED, _STREAMING = 1, 2, 3
_MAX_TRACKED = 50_000


class ObservabilityStage(Stage):
    """Metrics + request log + stats. Without a shared ledger it keeps an in-memory one of its own."""

    name = "observability"

    def __init__(
        self,
        settings: ObservabilitySettings,
        catalogue: Catalogue,
        *,
        ledger: Ledger | None = None,
        health: HealthProbe | None = None,
        budgets: BudgetProbe | None = None,
        log_sink: Sink | None = None,
        tracer: RequestTracer | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics(catalogue.models, max_label_values=settings.max_label_values)
        self.log = RequestLog(settings.request_log, include_prompt=settings.log_prompts, sink=log_sink)
        self._own_ledger = ledger is None
        self.ledger: Ledger = ledger if ledger is not None else SqliteLedger(Path(":memory:"))
        self.stats = StatsBook(
            catalogue, self.ledger, latency_window=settings.latency_window, health=health, budgets=budgets
        )
        self._tracked: dict[str, int] = {}
        if tracer is None and settings.otel_endpoint is not None:
            tracer = RequestTracer.otlp(settings.otel_endpoint, service_name=settings.otel_service_name)
        self.tracer = tracer
        self._publisher: asyncio.Task[None] | None = None
        self._publish_interval_s = 1.0

    def attach(
        self,
        *,
        health: HealthProbe | None = None,
        budgets: BudgetProbe | None = None,
        cache_events: Callable[[], Mapping[str, float]] | None = None,
        cache_size: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        """Wires the breaker board (reliability), budget status (governance) and the response cache's
        event counters (e.g. `lambda: semantic_cache.counters`) and size (`semantic_cache.memory`) once
        they exist."""
        if cache_events is not None:
            self.metrics.cache_events = cache_events
        if cache_size is not None:
            self.metrics.cache_size = cache_size
        if health is not None:
            self.stats.health = health
        if budgets is not None:
            self.stats.budgets = budgets

    def share_metrics(self, directory: Path, interval_s: float = 1.0) -> None:
        """Several worker processes: publish this worker's metrics to `directory` every `interval_s` and
        answer `/metrics` with every worker's counts (see `worker_share`)."""
        self.metrics.share = WorkerShare(directory)
        self._publish_interval_s = interval_s

    async def _publish_loop(self) -> None:
        while True:
            await asyncio.sleep(self._publish_interval_s)
            try:
                self.metrics.publish()
            except OSError as e:
                log.warning("publishing this worker's metrics failed: %s", e)

    async def start(self) -> None:
        if self._own_ledger:
            await self.ledger.start()
        self.log.open()
        if self.tracer is not None:
            self.tracer.open()
        if self.metrics.share is not None:
            self.metrics.publish()
            self._publisher = asyncio.create_task(self._publish_loop())

    async def close(self) -> None:
        if self._publisher is not None:
            await stop_task(self._publisher)
            self._publisher = None
            with contextlib.suppress(OSError):
                self.metrics.publish()  # the final counts outlive this worker
        self.log.close()
        if self.tracer is not None:
            self.tracer.close()
        if self._own_ledger:
            await self.ledger.close()

    async def on_request(self, ctx: RequestContext) -> None:
        tracked = self._tracked
        if len(tracked) >= _MAX_TRACKED:
            del tracked[next(iter(tracked))]  # a response that never started (lost client): forget it
        tracked[ctx.request_id] = _IN_PIPELINE
        self.metrics.request_started()

    async def on_routed(self, ctx: RequestContext) -> None:
        if self.tracer is not None:
            self.tracer.routed(ctx)

    async def on_finish(self, ctx: RequestContext) -> None:
        state = self._tracked.get(ctx.request_id)
        if state == _STREAMING or ctx.status == 499:
            self._tracked.pop(ctx.request_id, None)
        else:
            self._tracked[ctx.request_id] = _FINISHED
        self.metrics.observe(ctx, entered=state is not None)
        self.stats.record(ctx)
        self.log.request(ctx)
        if self.tracer is not None:
            self.tracer.finish(ctx)
        if self._own_ledger:
            self.ledger.append(LedgerRecord.from_context(ctx))

    def response_started(self, request_id: str, status: int, path: str) -> None:
        """Called as a chat response's headers go out; counts and logs requests no stage ever saw."""
        state = self._tracked.get(request_id)
        if state is None:
            if status >= 400:
                self.metrics.rejected_request(status)
                self.log.write(rejected_line(request_id, status, path))
        elif state == _FINISHED:
            del self._tracked[request_id]
        elif state == _IN_PIPELINE:
            self._tracked[request_id] = _STREAMING
