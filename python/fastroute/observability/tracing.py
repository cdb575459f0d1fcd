"""Optional OpenTelemetry traces: one span per request, with routing, cache and upstream child spans.

Off unless `FASTROUTE_OTEL_ENDPOINT` is set; needs the `otel` extra (opentelemetry-sdk and the OTLP/HTTP
exporter), imported only when tracing is on. Spans are built after the fact from the timings the request
recorded, in batches off the request path, on a `TracerProvider` of this app's own (never the global
one). Timing model: the request span covers the whole request; `route` ends when routing handed over to
the stages' `on_routed` and lasts `route_s`; `cache` marks the lookup (its outcome is an attribute); the
`upstream` span is the total time spent waiting on upstreams (all attempts, stream chunks included),
placed at the end of the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastroute.observability.outcome import served_model, tier_of, token_counts
from fastroute.pipeline import RequestContext

log = logging.getLogger("fastroute.observability")


class RequestTracer:
    """Turns finished requests into spans and hands them to `exporter` (an OpenTelemetry `SpanExporter`)."""

    def __init__(self, exporter: Any, *, service_name: str = "fastroute", flush_interval_s: float = 0.2) -> None:
        self.exporter = exporter
        self.service_name = service_name
        self.flush_interval_s = flush_interval_s
        self._provider: Any = None
        self._tracer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._routed: dict[str, float] = {}
        self._pending: list[tuple[RequestContext, float | None]] = []
        # perf_counter seconds -> unix nanoseconds (spans carry wall-clock times)
        self._offset_ns = time.time_ns() - time.perf_counter_ns()

    @classmethod
    def otlp(cls, endpoint: str, *, service_name: str = "fastroute") -> RequestTracer:
        """Exports over OTLP/HTTP to `endpoint` (e.g. `http://collector:4318/v1/traces`)."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls(OTLPSpanExporter(endpoint=endpoint), service_name=service_name)

    def open(self) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self._provider = TracerProvider(resource=Resource.create({"service.name": self.service_name}))
        self._provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self._tracer = self._provider.get_tracer("fastroute.observability")
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def close(self) -> None:
        self.flush()
        if self._provider is not None:
            self._provider.shutdown()  # exports what the batch processor still holds
            self._provider = None

    def routed(self, ctx: RequestContext) -> None:
        """Marks the end of routing (the observability stage's `on_routed` runs first)."""
        self._routed[ctx.request_id] = time.perf_counter()

    def finish(self, ctx: RequestContext) -> None:
        routed_at = self._routed.pop(ctx.request_id, None)
        if self._tracer is None:
            return
        self._pending.append((ctx, routed_at))
        if self._loop is None or len(self._pending) >= 512:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(self.flush_interval_s, self.flush)

    def flush(self) -> None:
        """Builds the spans of every finished request queued so far."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        for ctx, routed_at in batch:
            try:
                self._spans(ctx, routed_at)
            except Exception:
                log.exception("tracing: could not build the spans of request %s", ctx.request_id)

    def _ns(self, perf_s: float) -> int:
        return self._offset_ns + int(perf_s * 1e9)

    def _spans(self, ctx: RequestContext, routed_at: float | None) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        end = ctx.finished if ctx.finished is not None else ctx.started
        prompt, completion = token_counts(ctx)
        root = self._tracer.start_span(
            "POST /v1/chat/completions", kind=SpanKind.SERVER, start_time=self._ns(ctx.started),
            attributes={
                "fastroute.request_id": ctx.request_id,
                "fastroute.app": ctx.tenant.app,
                "fastroute.department": ctx.tenant.department,
                "fastroute.tier": tier_of(ctx),
                "fastroute.model": served_model(ctx),
                "fastroute.cache": ctx.cache_status,
                "fastroute.stream": ctx.chat.stream,
                "fastroute.attempts": ctx.attempts,
                "fastroute.cost_usd": ctx.cost_usd,
                "fastroute.counterfactual_usd": ctx.counterfactual_usd,
                "fastroute.overhead_ms": ctx.overhead_s(end) * 1000.0,
                "gen_ai.usage.input_tokens": prompt,
                "gen_ai.usage.output_tokens": completion,
                "http.response.status_code": ctx.status,
            },
        )
        if ctx.status >= 500:
            code = ctx.error.code if ctx.error is not None else None
            root.set_status(Status(StatusCode.ERROR, code or f"http {ctx.status}"))
        parent = trace.set_span_in_context(root)
        if ctx.decision is not None and routed_at is not None:
            route = self._tracer.start_span(
                "route", context=parent, start_time=self._ns(routed_at - ctx.route_s),
                attributes={"fastroute.tier": ctx.decision.tier, "fastroute.route.reason": ctx.decision.reason,
                            "fastroute.route.score": ctx.decision.score if ctx.decision.score is not None else -1.0},
            )
            route.end(end_time=self._ns(routed_at))
            if ctx.cache_status != "off":
                cache = self._tracer.start_span(
                    "cache", context=parent, start_time=self._ns(routed_at),
                    attributes={"fastroute.cache": ctx.cache_status},
                )
                cache.end(end_time=self._ns(routed_at))
        if ctx.attempts:
            attributes: dict[str, Any] = {"fastroute.attempts": ctx.attempts, "fastroute.model": served_model(ctx)}
            if ctx.fallback_reason:
                attributes["fastroute.fallback_reason"] = ctx.fallback_reason
            if ctx.ttft_s is not None:
                attributes["fastroute.ttft_ms"] = ctx.ttft_s * 1000.0
            upstream = self._tracer.start_span(
                "upstream", context=parent, kind=SpanKind.CLIENT, start_time=self._ns(end - ctx.upstream_s),
                attributes=attributes,
            )
            upstream.end(end_time=self._ns(end))
        root.end(end_time=self._ns(end))
