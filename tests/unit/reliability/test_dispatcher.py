"""The dispatcher against scripted upstream calls: failover, retries, escalation, breakers, hedging."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fastroute.catalogue import ModelEntry
from fastroute.chat_request import parse_chat_request
from fastroute.errors import InvalidRequest, UpstreamError, UpstreamUnavailable
from fastroute.pipeline import RequestContext
from fastroute.providers.base import Completion, StreamChunk, UpstreamStream, Usage
from fastroute.reliability import BreakerBoard, BreakerPolicy, Dispatcher, InProcessBreakerStore, LatencyBoard
from fastroute.reliability.settings import ReliabilitySettings
from fastroute.routing.decision import RouteDecision
from fastroute.simulator.demo import demo_catalogue

CAT = demo_catalogue("http://127.0.0.1:1")


def err(reason: str, *, retryable: bool = True, status: int = 502, retry_after: float | None = None) -> UpstreamError:
    return UpstreamError(
        f"failed: {reason}", status=status, retryable=retryable, reason=reason, retry_after=retry_after
    )


class Script:
    """Per deployment, a queue of outcomes: an exception to raise, a delay (seconds) then success, or success."""

    def __init__(self, **plan: list[Any]) -> None:
        self.plan = {k.replace("_", "-"): list(v) for k, v in plan.items()}
        self.calls: list[str] = []
        self.cancelled: list[str] = []

    async def __call__(self, model: ModelEntry) -> Completion:
        self.calls.append(model.name)
        queue = self.plan.get(model.name) or []
        outcome = queue.pop(0) if queue else None
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, float):
            try:
                await asyncio.sleep(outcome)
            except asyncio.CancelledError:
                self.cancelled.append(model.name)
                raise
        return Completion({"served": model.name}, Usage(10, 5))


def make(settings: ReliabilitySettings | None = None, **policy: Any) -> tuple[Dispatcher, list[float]]:
    waits: list[float] = []

    async def fake_sleep(s: float) -> None:
        waits.append(s)

    settings = settings or ReliabilitySettings()
    board = BreakerBoard(InProcessBreakerStore(BreakerPolicy(**policy)), CAT.models)
    return Dispatcher(CAT, settings, board, LatencyBoard(), rng=random.Random(3), sleep=fake_sleep), waits


def context(tier: str, *, model: str = "auto", headers: dict[str, str] | None = None, **body: Any) -> RequestContext:
    chat = parse_chat_request({"model": model, "messages": [{"role": "user", "content": "hi"}], **body})
    ctx = RequestContext("r1", headers or {}, chat)
    chain = CAT.tier_chain(tier)
    if model != "auto":
        chain = (CAT.models[model], *(m for m in chain if m.name != model))
    ctx.decision = RouteDecision(tier, chain, "test")
    return ctx


async def test_fails_over_along_the_chain_and_reports_it() -> None:
    d, waits = make()
    script = Script(sim_frontier=[err("http_500")])
    ctx = context("frontier", model="sim-frontier")
    result = await d.complete(ctx, script)
    assert result.body == {"served": "sim-frontier-openai"}
    assert script.calls == ["sim-frontier", "sim-frontier-openai"]
    assert (ctx.attempts, ctx.served_by, ctx.fallback_reason) == (2, "sim-frontier-openai", "http_500")
    assert waits == []  # another deployment needs no backoff


async def test_transient_failure_is_retried_on_the_same_deployment_after_backoff() -> None:
    d, waits = make()
    script = Script(sim_budget=[err("overloaded")])
    ctx = context("budget", model="sim-budget")
    await d.complete(ctx, script)
    assert script.calls == ["sim-budget", "sim-budget"]
    assert len(waits) == 1 and 0 < waits[0] <= 0.05
    assert ctx.attempts == 2


async def test_retry_after_is_honoured_when_short() -> None:
    d, waits = make()
    script = Script(sim_budget=[err("rate_limited", status=429, retry_after=0.4)])
    ctx = context("budget", model="sim-budget")
    await d.complete(ctx, script)
    assert script.calls == ["sim-budget", "sim-budget"] and waits == [pytest.approx(0.4, abs=0.05)]


async def test_long_retry_after_gives_the_client_the_429() -> None:
    d, waits = make()
    script = Script(sim_budget=[err("rate_limited", status=429, retry_after=30)])
    with pytest.raises(UpstreamError) as info:
        await d.complete(context("budget", model="sim-budget"), script)
    assert info.value.http_status == 429 and waits == [] and script.calls == ["sim-budget"]


async def test_broken_deployments_are_not_retried_and_the_last_error_surfaces() -> None:
    d, _ = make()
    script = Script(sim_frontier=[err("http_500")], sim_frontier_openai=[err("malformed")])
    ctx = context("frontier", model="sim-frontier")
    with pytest.raises(UpstreamError) as info:
        await d.complete(ctx, script)
    assert info.value.reason == "malformed" and ctx.attempts == 2


async def test_non_retryable_error_goes_to_the_client_at_once() -> None:
    d, _ = make()
    script = Script(sim_frontier=[err("bad_request", retryable=False, status=400)])
    with pytest.raises(UpstreamError):
        await d.complete(context("frontier", model="sim-frontier"), script)
    assert script.calls == ["sim-frontier"]
    assert d.breakers.snapshot()["sim-frontier"] == "closed"


async def test_auto_routed_request_escalates_to_the_next_tier() -> None:
    d, _ = make()
    script = Script(sim_budget=[err("http_503"), err("http_503")])
    ctx = context("budget")
    result = await d.complete(ctx, script)
    assert result.body == {"served": "sim-mid"}
    assert ctx.decision is not None and ctx.decision.tier == "mid" and "escalated after http_503" in ctx.decision.reason


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"model": "sim-budget"}, "named model"),
        ({"headers": {"x-fastroute-tier": "budget"}}, "forced tier"),
        ({"headers": {"x-fastroute-max-tier": "budget"}}, "capped tier"),
    ],
)
async def test_no_escalation_when_the_client_pinned_the_tier(kwargs: dict[str, Any], reason: str) -> None:
    d, _ = make()
    script = Script(sim_budget=[err("http_500")])
    with pytest.raises(UpstreamError):
        await d.complete(context("budget", **kwargs), script)
    assert script.calls == ["sim-budget"], reason


async def test_escalation_skips_tiers_policy_forbids_and_can_be_disabled() -> None:
    d, _ = make()
    script = Script(sim_budget=[err("http_500")])
    ctx = context("budget")
    ctx.allowed_tiers = frozenset({"budget", "frontier"})
    await d.complete(ctx, script)
    assert script.calls == ["sim-budget", "sim-frontier"]
    d2, _ = make(ReliabilitySettings(escalate=False))
    with pytest.raises(UpstreamError):
        await d2.complete(context("budget"), Script(sim_budget=[err("http_500")]))


async def test_context_length_error_escalates_to_a_larger_window() -> None:
    d, _ = make()
    script = Script(sim_budget=[err("context_length", retryable=False, status=400)])
    ctx = context("budget")
    result = await d.complete(ctx, script)
    assert result.body == {"served": "sim-mid"}  # 200k window > budget's 128k
    assert script.calls == ["sim-budget", "sim-mid"]


async def test_bad_upstream_key_skips_that_provider() -> None:
    d, _ = make()
    script = Script(sim_frontier=[err("upstream_auth", retryable=False)])
    ctx = context("frontier", model="sim-frontier")
    assert (await d.complete(ctx, script)).body == {"served": "sim-frontier-openai"}  # other provider
    ctx2 = context("frontier", model="sim-frontier-openai")
    with pytest.raises(UpstreamError):  # the only other frontier deployment is on the same provider? no: anthropic
        await d.complete(
            ctx2,
            Script(
                sim_frontier_openai=[err("upstream_auth", retryable=False)],
                sim_frontier=[err("upstream_auth", retryable=False)],
            ),
        )


async def test_open_breaker_is_skipped_and_all_open_is_503_with_retry_after() -> None:
    d, _ = make(failures=1, cooldown_s=60)
    await d.breakers.failure("sim-frontier")
    script = Script()
    ctx = context("frontier", model="sim-frontier")
    await d.complete(ctx, script)
    assert script.calls == ["sim-frontier-openai"] and ctx.attempts == 1
    await d.breakers.failure("sim-frontier-openai")
    with pytest.raises(UpstreamUnavailable) as info:
        await d.complete(context("frontier", model="sim-frontier"), script)
    assert info.value.http_status == 503 and "Retry-After" in info.value.headers


async def test_attempt_budget_bounds_the_whole_request() -> None:
    d, _ = make(ReliabilitySettings(max_attempts=3, retries_per_deployment=5))
    script = Script(sim_budget=[err("connection")] * 10, sim_mid=[err("connection")] * 10)
    ctx = context("budget")
    with pytest.raises(UpstreamError):
        await d.complete(ctx, script)
    assert len(script.calls) == 3 == ctx.attempts


async def test_unknown_latency_header_is_a_400() -> None:
    d, _ = make()
    with pytest.raises(InvalidRequest):
        await d.complete(context("budget", headers={"x-fastroute-latency": "ludicrous"}), Script())


async def test_realtime_hedges_after_p95_and_only_the_winner_is_served() -> None:
    d, _ = make(ReliabilitySettings(hedge_min_samples=3, hedge_min_delay_s=0.02))
    for _ in range(5):
        d.latency.record_first("sim-frontier", "complete", 0.01)
        d.latency.record_first("sim-frontier-openai", "complete", 0.02)
    # sim-frontier is known-fast so realtime tries it first; this time it stalls.
    script = Script(sim_frontier=[2.0], sim_frontier_openai=[0.01])
    ctx = context("frontier", model="sim-frontier", headers={"x-fastroute-latency": "realtime"})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = await d.complete(ctx, script)
    assert loop.time() - t0 < 0.5
    assert result.body == {"served": "sim-frontier-openai"}
    assert (ctx.served_by, ctx.attempts, ctx.fallback_reason) == ("sim-frontier-openai", 2, "hedge")
    assert ctx.response_headers["x-fastroute-hedged"] == "true"
    assert script.cancelled == ["sim-frontier"]  # the loser was cancelled
    assert d.breakers.snapshot()["sim-frontier"] == "closed"  # being slow is not a failure


async def test_realtime_without_enough_samples_does_not_hedge() -> None:
    d, _ = make(ReliabilitySettings(hedge_min_samples=3, hedge_min_delay_s=0.0))
    script = Script(sim_frontier=[0.05])
    ctx = context("frontier", model="sim-frontier", headers={"x-fastroute-latency": "realtime"})
    await d.complete(ctx, script)
    assert script.calls == ["sim-frontier"] and "x-fastroute-hedged" not in ctx.response_headers


class FakeStream(UpstreamStream):
    def __init__(self, pieces: list[str], fail_first: bool = False) -> None:
        self.pieces, self.fail_first, self.closed = pieces, fail_first, False

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        if self.fail_first:
            raise err("stream_cut")
        for p in self.pieces:
            yield StreamChunk({"choices": [{"delta": {"content": p}}]})
        self.usage = Usage(3, len(self.pieces))

    async def aclose(self) -> None:
        self.closed = True


async def test_stream_failing_before_its_first_chunk_fails_over_invisibly() -> None:
    d, _ = make()
    broken = FakeStream([], fail_first=True)
    opened: list[str] = []

    async def open_stream(model: ModelEntry) -> UpstreamStream:
        opened.append(model.name)
        return broken if model.name == "sim-frontier" else FakeStream(["a", "b", "c"])

    ctx = context("frontier", model="sim-frontier", stream=True)
    stream = await d.stream(ctx, open_stream)
    chunks = [c.data["choices"][0]["delta"]["content"] async for c in stream]
    await stream.aclose()
    assert chunks == ["a", "b", "c"] and stream.usage == Usage(3, 3)
    assert opened == ["sim-frontier", "sim-frontier-openai"] and broken.closed
    assert ctx.served_by == "sim-frontier-openai"
    assert d.latency.stats("sim-frontier-openai", "stream").samples == 1
