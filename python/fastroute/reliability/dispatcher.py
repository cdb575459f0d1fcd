"""The dispatcher: sends one routed request to an upstream deployment and keeps trying until one answers.

Order of trying: the tier's deployments (in the latency class's order, skipping open breakers), then
same-deployment retries after transient failures (backoff or the upstream's Retry-After), then the next
tier up when the request was auto-routed. Realtime requests may be hedged. Must not import aiohttp.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastroute.catalogue import TIERS, Catalogue, ModelEntry
from fastroute.errors import InvalidRequest, UpstreamError, UpstreamUnavailable
from fastroute.pipeline import RequestContext
from fastroute.providers.base import Completion, StreamChunk, UpstreamStream
from fastroute.reliability.breaker import BreakerBoard
from fastroute.reliability.latency import LATENCY_CLASSES, LATENCY_HEADER, LatencyBoard
from fastroute.reliability.retry_policy import judge
from fastroute.reliability.settings import ReliabilitySettings
from fastroute.routing.decision import RouteDecision
from fastroute.routing.router import FORCE_TIER_HEADER, MAX_TIER_HEADER

log = logging.getLogger("fastroute.reliability")
T = TypeVar("T")
Attempt = Callable[[ModelEntry], Awaitable[T]]

HEDGED_HEADER = "x-fastroute-hedged"


@dataclass(slots=True)
class _Budget:
    left: int


class _StepFailed(Exception):
    def __init__(self, failures: list[tuple[ModelEntry, UpstreamError]]) -> None:
        super().__init__("upstream step failed")
        self.failures = failures


class _TierFailed(Exception):
    def __init__(self, error: UpstreamError, context_model: ModelEntry | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.context_model = context_model  # set when the tier failed on a context-length error


class PeekedStream(UpstreamStream):
    """An upstream stream whose first chunk has already arrived (so failures before it can fail over)."""

    def __init__(
        self,
        inner: UpstreamStream,
        chunks: AsyncIterator[StreamChunk],
        first: StreamChunk | None,
        on_done: Callable[[int, float], None],
    ) -> None:
        self._inner = inner
        self._chunks = chunks
        self._first = first
        self._on_done = on_done
        self._first_at = time.perf_counter()
        self.usage = inner.usage

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        if self._first is None:
            return
        count = 1
        yield self._first
        async for chunk in self._chunks:
            count += 1
            self.usage = self._inner.usage
            yield chunk
        self.usage = self._inner.usage
        self._on_done(count, time.perf_counter() - self._first_at)

    def buffered(self) -> bool:
        return self._inner.buffered()

    async def aclose(self) -> None:
        await self._inner.aclose()
        self.usage = self._inner.usage


class Dispatcher:
    """Runs a request's upstream calls: failover, retries with backoff, escalation, breakers, hedging."""

    def __init__(
        self,
        catalogue: Catalogue,
        settings: ReliabilitySettings,
        breakers: BreakerBoard,
        latency: LatencyBoard,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.catalogue = catalogue
        self.settings = settings
        self.breakers = breakers
        self.latency = latency
        self._rng = rng or random.Random()
        self._sleep = sleep

    async def complete(self, ctx: RequestContext, call: Attempt[Completion]) -> Completion:
        """A whole answer from the first deployment that gives one."""

        async def attempt(model: ModelEntry) -> Completion:
            t0 = time.perf_counter()
            result = await call(model)
            if result.usage is not None:
                self.latency.record_throughput(
                    model.name, "complete", result.usage.completion_tokens, time.perf_counter() - t0
                )
            return result

        return await self._dispatch(ctx, attempt, "complete")

    async def stream(self, ctx: RequestContext, open_stream: Attempt[UpstreamStream]) -> UpstreamStream:
        """An open stream whose first chunk has arrived; failures before that fail over invisibly."""

        async def attempt(model: ModelEntry) -> UpstreamStream:
            upstream = await open_stream(model)
            chunks = upstream.__aiter__()
            try:
                first: StreamChunk | None = await chunks.__anext__()
            except StopAsyncIteration:
                first = None
            except BaseException:
                await upstream.aclose()
                raise

            def done(count: int, seconds: float) -> None:
                self.latency.record_throughput(model.name, "stream", count, seconds)

            return PeekedStream(upstream, chunks, first, done)

        return await self._dispatch(ctx, attempt, "stream")

    def latency_class(self, ctx: RequestContext) -> str:
        """The request's latency class: the header when given, else the policy default on the context."""
        raw = ctx.headers.get(LATENCY_HEADER)
        if raw is None:
            return ctx.latency_class if ctx.latency_class in LATENCY_CLASSES else "standard"
        value = raw.strip().lower()
        if value not in LATENCY_CLASSES:
            raise InvalidRequest(
                f"'{LATENCY_HEADER}' must be one of {', '.join(LATENCY_CLASSES)}.", param=LATENCY_HEADER
            )
        return value

    async def _dispatch(self, ctx: RequestContext, attempt: Attempt[T], mode: str) -> T:
        assert ctx.decision is not None
        latency_class = self.latency_class(ctx)
        ctx.latency_class = latency_class
        budget = _Budget(self.settings.max_attempts)
        decision = ctx.decision
        # ctx.upstream_s counts time calling or waiting on upstreams (attempts, hedges, backoff); breaker
        # and bookkeeping time stays in fastroute's overhead.
        while True:
            if ctx.chat.wants_auto:
                chain = self.latency.order(decision.chain, latency_class, mode)
            else:  # a model the client named is always tried first; only its fallbacks are reordered
                chain = [decision.chain[0], *self.latency.order(decision.chain[1:], latency_class, mode)]
            try:
                return await self._run_tier(ctx, chain, attempt, mode, latency_class, budget)
            except _TierFailed as failed:
                nxt = self._escalation(ctx, decision, failed) if budget.left > 0 else None
                if nxt is None:
                    raise failed.error  # noqa: B904 - keeps the adapter's own cause
                log.info(
                    "request %s: tier %s failed (%s); escalating to %s",
                    ctx.request_id,
                    decision.tier,
                    failed.error.reason,
                    nxt.tier,
                )
                decision = ctx.decision = nxt

    async def _run_tier(
        self,
        ctx: RequestContext,
        chain: Sequence[ModelEntry],
        attempt: Attempt[T],
        mode: str,
        latency_class: str,
        budget: _Budget,
    ) -> T:
        pending: deque[ModelEntry] = deque(chain)
        retries: list[tuple[float, int, ModelEntry]] = []  # (ready at, sequence, deployment)
        same_tries: dict[str, int] = {}
        skip_providers: set[str] = set()
        last: UpstreamError | None = None
        context_model: ModelEntry | None = None
        seq = 0
        while (pending or retries) and budget.left > 0:
            if pending:
                model = pending.popleft()
            else:
                ready, _, model = heapq.heappop(retries)
                wait = ready - time.monotonic()
                if wait > 0:
                    t0 = time.perf_counter()
                    await self._sleep(wait)
                    ctx.upstream_s += time.perf_counter() - t0
            if (
                model.provider in skip_providers
                or not _permitted(ctx, model)
                or not await self.breakers.allow(model.name)
            ):
                continue
            try:
                return await self._step(ctx, model, pending, attempt, mode, latency_class, budget)
            except _StepFailed as step:
                for failed, error in step.failures:
                    last = error
                    ctx.fallback_reason = error.reason
                    verdict = judge(
                        error,
                        same_retries_done=same_tries.get(failed.name, 0),
                        retries_per_deployment=self.settings.retries_per_deployment,
                        max_retry_after_s=self.settings.max_retry_after_s,
                        backoff_base_s=self.settings.backoff_base_s,
                        backoff_max_s=self.settings.backoff_max_s,
                        rng=self._rng,
                    )
                    if verdict.counts_against_breaker:
                        # A Retry-After too long to wait out shields the deployment from every request.
                        too_long = error.retry_after is not None and error.retry_after > self.settings.max_retry_after_s
                        await self.breakers.failure(failed.name, error.retry_after if too_long else None)
                    if verdict.escalate_for_context:
                        context_model = failed
                        larger = [m for m in pending if m.max_input_tokens > failed.max_input_tokens]
                        pending = deque(larger)
                        retries = []
                        continue
                    if not verdict.move_on:
                        raise error  # noqa: B904 - keeps the adapter's own cause
                    log.info("request %s: %s failed (%s)", ctx.request_id, failed.name, error.reason)
                    if verdict.other_provider_only:
                        skip_providers.add(failed.provider)
                    if verdict.retry_same_after is not None:
                        same_tries[failed.name] = same_tries.get(failed.name, 0) + 1
                        seq += 1
                        heapq.heappush(retries, (time.monotonic() + verdict.retry_same_after, seq, failed))
        if last is None and chain and not any(_permitted(ctx, m) for m in chain):
            last = UpstreamUnavailable(
                "No deployment of this tier is allowed for this request by policy (residency).",
                retryable=False,
                reason="policy_excluded",
            )
        if last is None:
            last = UpstreamUnavailable(
                "No upstream deployment can take this request now (their circuit breakers are open).",
                retryable=True,
                reason="circuit_open",
                headers={"Retry-After": "1"},
            )
        raise _TierFailed(last, context_model)

    async def _timed(self, model: ModelEntry, attempt: Attempt[T], mode: str) -> T:
        t0 = time.perf_counter()
        result = await attempt(model)
        self.latency.record_first(model.name, mode, time.perf_counter() - t0)
        return result

    async def _step(
        self,
        ctx: RequestContext,
        model: ModelEntry,
        pending: deque[ModelEntry],
        attempt: Attempt[T],
        mode: str,
        latency_class: str,
        budget: _Budget,
    ) -> T:
        """One call to `model`, plus a hedged call to the next deployment if it is slower than its p95."""
        ctx.attempts += 1
        budget.left -= 1
        delay = None
        if latency_class == "realtime" and self.settings.hedge and pending and budget.left > 0:
            delay = self.latency.hedge_delay(
                model.name, mode, self.settings.hedge_min_samples, self.settings.hedge_min_delay_s
            )
        if delay is None:
            t0 = time.perf_counter()
            try:
                result = await self._timed(model, attempt, mode)
            except UpstreamError as e:
                raise _StepFailed([(model, e)]) from e
            finally:
                ctx.upstream_s += time.perf_counter() - t0
            await self.breakers.success(model.name)
            ctx.served_by = model.name
            return result
        return await self._hedged(ctx, model, pending, attempt, mode, budget, delay)

    async def _hedged(
        self,
        ctx: RequestContext,
        model: ModelEntry,
        pending: deque[ModelEntry],
        attempt: Attempt[T],
        mode: str,
        budget: _Budget,
        delay: float,
    ) -> T:
        tasks: dict[asyncio.Task[T], ModelEntry] = {asyncio.ensure_future(self._timed(model, attempt, mode)): model}
        failures: list[tuple[ModelEntry, UpstreamError]] = []
        hedge_sent = False
        t0 = time.perf_counter()
        try:
            while tasks:
                timeout = None if hedge_sent else delay
                done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    hedge_sent = True
                    hedge = await self._hedge_target(ctx, pending)
                    if hedge is not None:
                        ctx.attempts += 1
                        budget.left -= 1
                        ctx.response_headers[HEDGED_HEADER] = "true"
                        log.info(
                            "request %s: %s slower than p95 %.3fs; hedging on %s",
                            ctx.request_id,
                            model.name,
                            delay,
                            hedge.name,
                        )
                        tasks[asyncio.ensure_future(self._timed(hedge, attempt, mode))] = hedge
                    continue
                for task in done:
                    winner = tasks.pop(task)
                    exc = task.exception()
                    if exc is None:
                        ctx.upstream_s += time.perf_counter() - t0
                        await self.breakers.success(winner.name)
                        ctx.served_by = winner.name
                        if winner is not model:
                            ctx.fallback_reason = "hedge"
                        return task.result()
                    if not isinstance(exc, UpstreamError):
                        raise exc
                    failures.append((winner, exc))
                if not hedge_sent:
                    break  # the primary failed before the hedge was due: ordinary failover
            ctx.upstream_s += time.perf_counter() - t0
            raise _StepFailed(failures)
        finally:
            await _cancel_losers(tasks)

    async def _hedge_target(self, ctx: RequestContext, pending: deque[ModelEntry]) -> ModelEntry | None:
        while pending:
            candidate = pending.popleft()
            if _permitted(ctx, candidate) and await self.breakers.allow(candidate.name):
                return candidate
        return None

    def _escalation(self, ctx: RequestContext, decision: RouteDecision, failed: _TierFailed) -> RouteDecision | None:
        """The next tier up that may serve this request, or None (named models and forced tiers stay put)."""
        if not self.settings.escalate or not ctx.chat.wants_auto or ctx.headers.get(FORCE_TIER_HEADER):
            return None
        cap = ctx.headers.get(MAX_TIER_HEADER, "").strip().lower()
        top = TIERS.index(cap) if cap in TIERS else len(TIERS) - 1
        tokens = ctx.analysis.tokens if ctx.analysis is not None else 0
        needed = tokens + (ctx.chat.max_tokens or 0)
        floor = failed.context_model.max_input_tokens if failed.context_model is not None else 0
        for rank in range(TIERS.index(decision.tier) + 1, top + 1):
            tier = TIERS[rank]
            if ctx.allowed_tiers is not None and tier not in ctx.allowed_tiers:
                continue
            chain = tuple(
                m
                for m in self.catalogue.tier_chain(tier)
                if m.max_input_tokens >= needed and m.max_input_tokens > floor and _permitted(ctx, m)
            )
            if chain:
                reason = f"{decision.reason}; escalated after {failed.error.reason}"
                return RouteDecision(tier=tier, chain=chain, reason=reason, score=decision.score)
        return None


def _permitted(ctx: RequestContext, model: ModelEntry) -> bool:
    """Policy may restrict where a request goes (residency): never try, hedge or escalate outside it."""
    return ctx.deployment_allowed is None or ctx.deployment_allowed(model)


async def _cancel_losers(tasks: dict[asyncio.Task[Any], ModelEntry]) -> None:
    """Cancels the calls that lost a hedge race; a stream that opened anyway is closed, never billed."""
    for task in tasks:
        task.cancel()
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, UpstreamStream):
            await result.aclose()
