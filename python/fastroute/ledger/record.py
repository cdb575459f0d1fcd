"""`LedgerRecord`: what the ledger keeps about one finished request (never prompt text or PII values).

Pure data: must not import aiohttp or sqlite3.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from fastroute.pipeline import RequestContext


class LedgerRecord(NamedTuple):
    """One request's spend and outcome. `decisions` are policy outcomes such as `pii:redact:email`.

    A named tuple, in the ledger table's column order: one is built per request, 3x faster than a frozen
    dataclass of 24 fields, and it becomes the table row with almost no copying (`ledger.store`).
    """

    ts: float
    request_id: str
    app: str = "default"
    department: str = "default"
    key_id: str | None = None
    tier: str | None = None
    route_reason: str | None = None
    model: str | None = None
    provider: str | None = None
    status: int = 200
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    counterfactual_usd: float = 0.0
    cache_status: str = "off"
    attempts: int = 0
    latency_ms: float = 0.0
    overhead_ms: float = 0.0
    ttft_ms: float | None = None
    stream: bool = False
    usage_estimated: bool = False
    fallback_reason: str | None = None
    error_code: str | None = None
    decisions: tuple[str, ...] = ()

    @classmethod
    def from_context(cls, ctx: RequestContext, now: float | None = None) -> LedgerRecord:
        """Builds the record of a finished request from its context."""
        end = ctx.finished if ctx.finished is not None else time.perf_counter()
        model = ctx.served_by
        provider = None
        if ctx.decision is not None and model is not None:
            provider = next((m.provider for m in ctx.decision.chain if m.name == model), None)
        if model is None and ctx.cached_body is not None and ctx.decision is not None:
            model = ctx.decision.model.name
        usage = ctx.usage
        served = ctx.served_by is not None
        return cls(
            ts=time.time() if now is None else now,
            request_id=ctx.request_id,
            app=ctx.tenant.app,
            department=ctx.tenant.department,
            key_id=ctx.tenant.key_id,
            tier=ctx.decision.tier if ctx.decision is not None else None,
            route_reason=ctx.decision.reason if ctx.decision is not None else None,
            model=model,
            provider=provider,
            status=ctx.status,
            prompt_tokens=usage.prompt_tokens if usage is not None else 0,
            completion_tokens=usage.completion_tokens if usage is not None else 0,
            cost_usd=ctx.cost_usd if served else 0.0,
            counterfactual_usd=ctx.counterfactual_usd,
            cache_status=ctx.cache_status,
            attempts=ctx.attempts,
            latency_ms=max(0.0, end - ctx.started) * 1000.0,
            overhead_ms=ctx.overhead_s(end) * 1000.0,
            ttft_ms=ctx.ttft_s * 1000.0 if ctx.ttft_s is not None else None,
            stream=ctx.chat.stream,
            usage_estimated=ctx.usage_estimated,
            fallback_reason=ctx.fallback_reason,
            error_code=ctx.error.code if ctx.error is not None else None,
            decisions=tuple(ctx.decisions),
        )
