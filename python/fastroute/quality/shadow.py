"""Shadow evaluation: ask the frontier tier in the background and judge a cheaper tier's answer against it.

Never delays a user's answer: jobs run as asyncio tasks after the response is done, at most
`concurrency` at once (more are skipped, not queued without bound), cancelled on shutdown. Every job
reserves its worst-case cost from a daily budget first and settles what it really spent.
Must not import aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from fastroute.catalogue import TIERS, Catalogue, ModelEntry
from fastroute.chat_request import ChatRequest
from fastroute.errors import UpstreamError
from fastroute.providers.base import Completion
from fastroute.quality.judge import Judge, Verdict
from fastroute.quality.store import utc_day

log = logging.getLogger("fastroute.quality")
TOP_TIER = TIERS[-1]

# (deployment, request) -> its whole answer: the gateway's own providers
UpstreamCall = Callable[[ModelEntry, ChatRequest], Awaitable[Completion]]


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """What one shadow evaluation needs from a finished request (held only until the job ends)."""

    request_id: str
    app: str
    chat: ChatRequest
    prompt_tokens: int
    natural_tier: str  # what routing chose before any quality adjustment
    served_tier: str
    served_model: str
    served_text: str
    structured: bool
    feature_version: int | None = None
    keep_label: bool = True  # False when the prompt may hold personal data (PII detected, not redacted)


@dataclass(frozen=True, slots=True)
class Comparison:
    tier: str
    model: str
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class ShadowOutcome:
    job: ShadowJob
    reference_model: str
    comparisons: tuple[Comparison, ...]
    cost_usd: float


class ShadowBudget:
    """USD per UTC day for shadow calls: reserve a worst case before a job, settle the actual after."""

    def __init__(self, limit_usd: float, *, spent_usd: float = 0.0, day: str | None = None) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.reserved_usd = 0.0
        self.day = day or utc_day(time.time())
        self._day_start = -1.0e18 if day else time.time() // 86400.0 * 86400.0

    def _roll(self, now: float) -> None:
        if self._day_start <= now < self._day_start + 86400.0:
            return  # the common case, without formatting a date per request
        day = utc_day(now)
        self._day_start = now - now % 86400.0
        if day != self.day:
            self.day, self.spent_usd = day, 0.0

    def try_reserve(self, amount: float, now: float | None = None) -> bool:
        self._roll(time.time() if now is None else now)
        if self.spent_usd + self.reserved_usd + amount > self.limit_usd:
            return False
        self.reserved_usd += amount
        return True

    def settle(self, reserved: float, actual: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - reserved)
        self.spent_usd += actual

    @property
    def remaining_usd(self) -> float:
        return max(0.0, self.limit_usd - self.spent_usd - self.reserved_usd)


def answer_of(body: dict[str, Any] | None) -> str:
    """The text of an OpenAI-shaped answer; tool calls (name + parsed arguments) as JSON, which dominate."""
    choices = body.get("choices") if isinstance(body, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, dict):
        return ""  # not an answer this judge can read (upstreams are not trusted to be well formed)
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        out = []
        for call in calls:
            fn = call.get("function") if isinstance(call, dict) else None
            fn = fn if isinstance(fn, dict) else {}
            args = fn.get("arguments")
            with contextlib.suppress(orjson.JSONDecodeError, TypeError):
                args = orjson.loads(args) if isinstance(args, str) else args
            out.append({"name": fn.get("name"), "arguments": args})
        return orjson.dumps(out, option=orjson.OPT_SORT_KEYS).decode()
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def shadow_request(chat: ChatRequest, max_tokens: int) -> ChatRequest:
    """The client's request, unstreamed and capped at `max_tokens` (keeping the client's field name)."""
    drop = ("stream", "stream_options", "max_tokens", "max_completion_tokens")
    body = {k: v for k, v in chat.body.items() if k not in drop}
    body["max_completion_tokens" if "max_completion_tokens" in chat.body else "max_tokens"] = max_tokens
    return replace(chat, body=body, stream=False, include_usage=False, max_tokens=max_tokens)


@dataclass(slots=True)
class _Spend:
    usd: float = 0.0


@dataclass(slots=True)
class ShadowCounters:
    offered: int = 0
    started: int = 0
    completed: int = 0
    failed: int = 0
    skipped_budget: int = 0
    skipped_busy: int = 0


class ShadowEvaluator:
    """Samples finished requests, runs their shadow jobs in the background and reports each outcome."""

    def __init__(
        self,
        catalogue: Catalogue,
        call: UpstreamCall,
        judge: Judge,
        budget: ShadowBudget,
        on_outcome: Callable[[ShadowOutcome], Awaitable[None]],
        *,
        rate: float,
        concurrency: int,
        max_tokens: int,
        on_spend: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.judge = judge
        self.budget = budget
        self.rate = rate
        self.max_tokens = max_tokens
        self.counters = ShadowCounters()
        self._call = call
        self._on_outcome = on_outcome
        self._on_spend = on_spend
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(concurrency)
        self._max_pending = 4 * concurrency
        self._tasks: set[asyncio.Task[None]] = set()

    def wants(self) -> bool:
        """Samples one request at `rate` (call only for requests eligible for shadowing)."""
        return self.rate >= 1.0 or self._rng.random() < self.rate

    def offer(self, job: ShadowJob) -> bool:
        """Starts `job` in the background unless the budget or the concurrency bound says no."""
        self.counters.offered += 1
        if len(self._tasks) >= self._max_pending:
            self.counters.skipped_busy += 1
            return False
        cap = min(self.max_tokens, job.chat.max_tokens or self.max_tokens)
        reservation = self.reservation(job, cap)
        if not self.budget.try_reserve(reservation):
            self.counters.skipped_budget += 1
            return False
        self.counters.started += 1
        spent = _Spend()
        task = asyncio.get_running_loop().create_task(self._run(job, cap, spent), name="shadow-eval")
        self._tasks.add(task)
        # Settled in a done callback, not in the job: a job cancelled before it ever ran must release too.
        task.add_done_callback(lambda t: self._done(t, reservation, spent))
        return True

    def _done(self, task: asyncio.Task[None], reservation: float, spent: _Spend) -> None:
        self._tasks.discard(task)
        self.budget.settle(reservation, spent.usd)
        if self._on_spend is not None and spent.usd:
            self._on_spend(spent.usd)

    def reservation(self, job: ShadowJob, cap: int) -> float:
        """The most `job` can cost: each upstream call at its dearest deployment, plus the judgements."""
        # Upstreams count prompt tokens with their own tokenizers: leave a margin over ours.
        prompt = int(job.prompt_tokens * 1.25) + 16
        total, comparisons = 0.0, 1
        tiers = [] if job.served_tier == TOP_TIER else [TOP_TIER]
        if job.natural_tier != job.served_tier:
            tiers.append(job.natural_tier)
            comparisons += int(job.served_tier != TOP_TIER)
        for tier in tiers:
            chain = self.catalogue.tier_chain(tier)
            total += max((m.cost(prompt, cap) for m in chain), default=0.0)
        answer_chars = max(len(job.served_text), cap * 4)
        total += comparisons * self.judge.reserve_usd(len(str(job.chat.messages)), answer_chars)
        return total

    async def _ask(self, tier: str, request: ChatRequest, prompt_tokens: int) -> tuple[str, str, float]:
        """(answer text, deployment, cost) from the first deployment of `tier` that answers."""
        last: UpstreamError | None = None
        for model in self.catalogue.tier_chain(tier):
            try:
                completion = await self._call(model, request)
            except UpstreamError as e:
                last = e
                if not e.retryable:
                    raise
                continue
            text = answer_of(completion.body)
            usage = completion.usage
            if usage is not None:
                cost = model.cost(usage.prompt_tokens, usage.completion_tokens)
            else:
                cost = model.cost(prompt_tokens, max(1, len(text) // 4))
            return text, model.name, cost
        if last is not None:
            raise last
        raise UpstreamError(f"no deployment serves the {tier} tier", reason="no_deployment")

    async def _run(self, job: ShadowJob, cap: int, spent: _Spend) -> None:
        try:
            async with self._slots:
                request = shadow_request(job.chat, cap)
                if job.served_tier == TOP_TIER:
                    reference, reference_model = job.served_text, job.served_model
                else:
                    reference, reference_model, cost = await self._ask(TOP_TIER, request, job.prompt_tokens)
                    spent.usd += cost
                candidates = [(job.served_tier, job.served_model, job.served_text)]
                if job.natural_tier != job.served_tier:
                    text, model, cost = await self._ask(job.natural_tier, request, job.prompt_tokens)
                    spent.usd += cost
                    candidates = [(job.natural_tier, model, text)]
                    if job.served_tier != TOP_TIER:
                        candidates.append((job.served_tier, job.served_model, job.served_text))
                prompt = "\n".join(str(m.get("content")) for m in job.chat.messages)
                comparisons = []
                for tier, model, text in candidates:
                    verdict = await self.judge.judge(prompt, text, reference, structured=job.structured)
                    spent.usd += verdict.cost_usd
                    comparisons.append(Comparison(tier, model, verdict))
            self.counters.completed += 1
            await self._on_outcome(ShadowOutcome(job, reference_model, tuple(comparisons), spent.usd))
        except asyncio.CancelledError:
            raise
        except UpstreamError as e:
            self.counters.failed += 1
            log.info("shadow evaluation of request %s failed upstream: %s", job.request_id, e.message)
        except Exception:
            self.counters.failed += 1
            log.exception("shadow evaluation of request %s failed", job.request_id)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Waits for every job started so far (tests, and a graceful stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancels jobs still running: shadow work never holds up shutdown."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def snapshot(self) -> dict[str, Any]:
        c = self.counters
        return {
            "rate": self.rate,
            "judge": self.judge.name,
            "budget_usd": self.budget.limit_usd,
            "spent_usd": round(self.budget.spent_usd, 6),
            "reserved_usd": round(self.budget.reserved_usd, 6),
            "day": self.budget.day,
            "in_flight": len(self._tasks),
            "offered": c.offered,
            "started": c.started,
            "completed": c.completed,
            "failed": c.failed,
            "skipped_budget": c.skipped_budget,
            "skipped_busy": c.skipped_busy,
        }
