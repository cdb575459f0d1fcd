"""Shadow evaluation internals: budget, worst-case reservation, answer extraction, the shadow request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fastroute.catalogue import Catalogue
from fastroute.chat_request import ChatRequest, parse_chat_request
from fastroute.errors import UpstreamError
from fastroute.providers.base import Completion, Usage
from fastroute.quality.judge import SimilarityJudge
from fastroute.quality.shadow import (
    ShadowBudget,
    ShadowEvaluator,
    ShadowJob,
    ShadowOutcome,
    answer_of,
    shadow_request,
)
from fastroute.simulator.demo import demo_catalogue

DAY1 = 1_800_000_000.0  # a fixed instant; DAY1 + 86400 is the next UTC day


def test_budget_reserves_settles_and_rolls_over_by_day() -> None:
    b = ShadowBudget(1.0, day="2027-01-15")
    assert b.try_reserve(0.6, now=DAY1)
    assert not b.try_reserve(0.5, now=DAY1)  # 0.6 held + 0.5 > 1.0
    b.settle(0.6, 0.2)
    assert b.spent_usd == pytest.approx(0.2) and b.reserved_usd == 0.0
    assert b.try_reserve(0.8, now=DAY1) and not b.try_reserve(0.01, now=DAY1)
    b.settle(0.8, 0.8)
    assert b.remaining_usd == 0.0
    assert b.try_reserve(0.5, now=DAY1 + 86400)  # a new UTC day starts from zero
    assert b.spent_usd == 0.0


def chat(**extra: Any) -> ChatRequest:
    return parse_chat_request({"model": "auto", "messages": [{"role": "user", "content": "hi"}], **extra})


def test_shadow_request_is_unstreamed_and_capped() -> None:
    original = chat(stream=True, stream_options={"include_usage": True}, max_tokens=4000, temperature=0.3)
    req = shadow_request(original, 256)
    assert (req.stream, req.include_usage, req.max_tokens) == (False, False, 256)
    assert "stream" not in req.body and "stream_options" not in req.body
    assert req.body["max_tokens"] == 256 and req.body["temperature"] == 0.3
    assert original.body["max_tokens"] == 4000  # the client's request is untouched
    req = shadow_request(chat(max_completion_tokens=50), 40)
    assert req.body["max_completion_tokens"] == 40 and "max_tokens" not in req.body


def test_answer_of() -> None:
    assert answer_of({"choices": [{"message": {"content": "hello"}}]}) == "hello"
    assert answer_of({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"text": "b"}]}}]}) == "ab"
    calls = [{"function": {"name": "f", "arguments": '{"b": 1, "a": 2}'}}]
    assert answer_of({"choices": [{"message": {"content": "let me", "tool_calls": calls}}]}) == (
        '[{"arguments":{"a":2,"b":1},"name":"f"}]'
    )
    assert answer_of(None) == "" and answer_of({}) == "" and answer_of({"choices": []}) == ""
    junk: list[Any] = [{"choices": "x"}, {"choices": [None]}, {"choices": [{"message": "hi"}]}, []]
    for body in junk:
        assert answer_of(body) == ""
    assert answer_of({"choices": [{"message": {"tool_calls": [None, {"function": "f"}]}}]}) == (
        '[{"arguments":null,"name":null},{"arguments":null,"name":null}]'
    )


class FakeUpstreams:
    """Answers by tier: the frontier says the reference, others what `answers` holds; counts calls."""

    def __init__(self, answers: dict[str, str], fail: set[str] | None = None) -> None:
        self.answers = answers
        self.fail = fail or set()
        self.calls: list[tuple[str, int | None]] = []

    async def __call__(self, model: Any, request: ChatRequest) -> Completion:
        self.calls.append((model.name, request.max_tokens))
        if model.name in self.fail:
            raise UpstreamError("down", retryable=True)
        text = self.answers[model.tier]
        return Completion({"choices": [{"message": {"content": text}}]}, Usage(10, 20))


def job(natural: str = "budget", served: str = "budget", text: str = "paris is the capital") -> ShadowJob:
    return ShadowJob("r1", "app", chat(), 10, natural, served, f"sim-{served}", text, False)


def evaluator(
    upstreams: FakeUpstreams, outcomes: list[ShadowOutcome], budget: float = 1.0, **kw: Any
) -> ShadowEvaluator:
    async def record(o: ShadowOutcome) -> None:
        outcomes.append(o)

    catalogue: Catalogue = demo_catalogue("http://127.0.0.1:9")
    args: dict[str, Any] = {"rate": 1.0, "concurrency": 2, "max_tokens": 100}
    args.update(kw)
    return ShadowEvaluator(catalogue, upstreams, SimilarityJudge(0.5), ShadowBudget(budget), record, **args)


async def test_a_job_compares_the_served_answer_with_the_frontier_and_pays_for_it() -> None:
    ups = FakeUpstreams({"frontier": "paris is the capital"})
    outcomes: list[ShadowOutcome] = []
    ev = evaluator(ups, outcomes)
    assert ev.offer(job())
    await ev.drain()
    (o,) = outcomes
    assert [(c.tier, c.verdict.agree) for c in o.comparisons] == [("budget", True)]
    assert ups.calls == [("sim-frontier", 100)]
    frontier = ev.catalogue.models["sim-frontier"]
    assert o.cost_usd == pytest.approx(frontier.cost(10, 20)) == pytest.approx(ev.budget.spent_usd)
    assert ev.budget.reserved_usd == 0.0


async def test_a_probe_of_a_demoted_tier_asks_it_and_judges_both() -> None:
    ups = FakeUpstreams({"frontier": "paris is the capital", "budget": "no idea at all"})
    outcomes: list[ShadowOutcome] = []
    ev = evaluator(ups, outcomes)
    ev.offer(job(natural="budget", served="mid"))
    await ev.drain()
    (o,) = outcomes
    assert [(c.tier, c.verdict.agree) for c in o.comparisons] == [("budget", False), ("mid", True)]
    assert sorted(name for name, _ in ups.calls) == ["sim-budget", "sim-frontier"]


async def test_served_by_the_frontier_needs_no_frontier_call() -> None:
    ups = FakeUpstreams({"budget": "paris is the capital"})
    outcomes: list[ShadowOutcome] = []
    ev = evaluator(ups, outcomes)
    ev.offer(job(natural="budget", served="frontier"))
    await ev.drain()
    assert [name for name, _ in ups.calls] == ["sim-budget"]
    assert outcomes[0].reference_model == "sim-frontier"


async def test_failover_within_the_frontier_chain() -> None:
    ups = FakeUpstreams({"frontier": "paris is the capital"}, fail={"sim-frontier"})
    outcomes: list[ShadowOutcome] = []
    ev = evaluator(ups, outcomes)
    ev.offer(job())
    await ev.drain()
    assert outcomes[0].reference_model == "sim-frontier-openai"
    ups.fail = {"sim-frontier", "sim-frontier-openai"}
    ev.offer(job())
    await ev.drain()
    assert ev.counters.failed == 1 and len(outcomes) == 1
    assert ev.budget.reserved_usd == 0.0  # a failed job releases its reservation


async def test_reservation_bounds_the_worst_case_and_the_budget_refuses() -> None:
    ups = FakeUpstreams({"frontier": "x"})
    outcomes: list[ShadowOutcome] = []
    ev = evaluator(ups, outcomes, budget=0.0)
    worst = ev.reservation(job(), 100)
    dearest = max(m.cost(int(10 * 1.25) + 16, 100) for m in ev.catalogue.tier_chain("frontier"))
    assert worst == pytest.approx(dearest)
    assert not ev.offer(job()) and ev.counters.skipped_budget == 1
    assert ev.reservation(job(served="mid"), 100) > worst  # a probe buys two answers


async def test_bounded_pending_and_cancel_on_close() -> None:
    gate = asyncio.Event()

    class Slow(FakeUpstreams):
        async def __call__(self, model: Any, request: ChatRequest) -> Completion:
            await gate.wait()
            return await super().__call__(model, request)

    ev = evaluator(Slow({"frontier": "x"}), [], concurrency=1)
    started = [ev.offer(job()) for _ in range(6)]
    assert started == [True] * 4 + [False] * 2  # 4 x concurrency pending at most
    assert ev.counters.skipped_busy == 2
    await ev.close()
    assert ev.pending == 0 and ev.budget.reserved_usd == 0.0


def test_sampling_rate() -> None:
    import random

    ev = evaluator(FakeUpstreams({}), [], rate=0.25, rng=random.Random(7))
    hits = sum(ev.wants() for _ in range(4000))
    assert 850 < hits < 1150
