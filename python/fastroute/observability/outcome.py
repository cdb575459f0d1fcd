"""Pure summaries of a finished `RequestContext` that metrics, stats and the request log all share.

Pure: must not import aiohttp or prometheus_client. Nothing here returns prompt text.
"""

from __future__ import annotations

from typing import Any

from fastroute.pipeline import RequestContext

NONE = "none"


def is_cache_hit(ctx: RequestContext) -> bool:
    return ctx.cache_status.startswith("hit")


def served_model(ctx: RequestContext) -> str:
    """The deployment that answered; for cache hits the routed one; else the routed one or `none`."""
    if ctx.served_by is not None:
        return ctx.served_by
    if ctx.decision is not None:
        return ctx.decision.model.name
    return NONE


def tier_of(ctx: RequestContext) -> str:
    return ctx.decision.tier if ctx.decision is not None else NONE


def token_counts(ctx: RequestContext) -> tuple[int, int]:
    """(prompt, completion) tokens billed or, for cache hits, the cached answer's usage."""
    if ctx.usage is not None:
        return ctx.usage.prompt_tokens, ctx.usage.completion_tokens
    if ctx.cached_body is not None:
        usage: Any = ctx.cached_body.get("usage") or {}
        try:
            return int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        except (TypeError, ValueError, AttributeError):
            return 0, 0
    return 0, 0


def cache_saved_usd(ctx: RequestContext) -> float:
    """What a cache hit would have cost on the deployment routing chose (0 for anything else)."""
    if ctx.decision is None or not is_cache_hit(ctx):
        return 0.0
    prompt, completion = token_counts(ctx)
    return ctx.decision.model.cost(prompt, completion)


def failed_deployments(ctx: RequestContext) -> tuple[str, ...]:
    """Deployments of the chain that were tried and failed for this request, in order.

    The chain is tried head first; every attempt but a successful last one failed.
    """
    if ctx.decision is None or ctx.attempts <= 0:
        return ()
    failures = ctx.attempts - (1 if ctx.served_by is not None else 0)
    chain = ctx.decision.chain
    if ctx.served_by is not None:
        # with retries on one deployment `attempts` may exceed the chain: blame what precedes the winner
        names = [m.name for m in chain]
        upto = names.index(ctx.served_by) if ctx.served_by in names else 0
        if failures <= 0:
            return ()
        return tuple(names[:upto]) if upto > 0 else (ctx.served_by,)
    return tuple(m.name for m in chain[: min(failures, len(chain))])


def latency_s(ctx: RequestContext) -> float:
    end = ctx.finished if ctx.finished is not None else ctx.started
    return max(0.0, end - ctx.started)


def decision_kind(decision: str) -> str:
    """`pii:redact:email` -> `pii:redact` (bounded: the value part is dropped)."""
    parts = decision.split(":", 2)
    return ":".join(parts[:2])
