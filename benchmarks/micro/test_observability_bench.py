"""Per-request cost of visibility: what `ObservabilityStage.on_finish` adds (metrics + stats + log line).

Run: `pytest benchmarks/micro/test_observability_bench.py --benchmark-enable -s`. Besides pytest-benchmark's
table, each case times 20,000 single calls with `perf_counter_ns` and prints p50/p99 (also in `extra_info`).
The log line goes to an in-memory sink; lines are built and written per batch of 256 (in the server a
0.2 s timer usually writes them first, between requests), so their cost is amortised here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from fastroute.chat_request import parse_chat_request
from fastroute.ledger import LedgerRecord
from fastroute.observability import ObservabilitySettings, ObservabilityStage
from fastroute.pipeline import RequestContext
from fastroute.providers.base import Usage
from fastroute.routing.decision import RouteDecision
from fastroute.simulator.demo import demo_catalogue

CATALOGUE = demo_catalogue("http://127.0.0.1:1")
N = 20_000


def _ctx(i: int) -> RequestContext:
    chat = parse_chat_request({"model": "auto", "messages": [{"role": "user", "content": "hello"}]})
    ctx = RequestContext(f"rid-{i}", {}, chat)
    model = CATALOGUE.models[("sim-budget", "sim-mid", "sim-frontier")[i % 3]]
    ctx.decision = RouteDecision(model.tier, (model,), "bench")
    ctx.served_by, ctx.attempts, ctx.usage = model.name, 1, Usage(120, 300)
    ctx.cost_usd, ctx.counterfactual_usd = model.cost(120, 300), 0.0048
    ctx.upstream_s, ctx.route_s, ctx.finished = 0.2, 0.00005, ctx.started + 0.2003
    return ctx


def _report(name: str, fn: Callable[[int], None], benchmark: Any) -> None:
    for i in range(2_000):
        fn(i)  # warm: every label child bound
    samples = []
    for i in range(N):
        t0 = time.perf_counter_ns()
        fn(i)
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    p50, p99 = samples[N // 2] / 1000, samples[int(N * 0.99)] / 1000
    benchmark.extra_info.update({"p50_us": p50, "p99_us": p99, "n": N})
    print(f"\n{name}: p50 {p50:.2f} µs  p99 {p99:.2f} µs  (n={N})")
    counter = iter(range(10**9))
    benchmark(lambda: fn(next(counter)))


@pytest.fixture
def stage() -> ObservabilityStage:
    sink: list[bytes] = []
    s = ObservabilityStage(ObservabilitySettings(), CATALOGUE, ledger=_NullLedger(), log_sink=sink.append)
    s._sink_ref = sink  # type: ignore[attr-defined]
    return s


class _NullLedger:
    def append(self, record: LedgerRecord) -> None:
        pass


def test_metrics_observe(benchmark: Any, stage: ObservabilityStage) -> None:
    contexts = [_ctx(i) for i in range(30)]
    _report("metrics.observe", lambda i: stage.metrics.observe(contexts[i % 30], entered=False), benchmark)


def test_whole_on_finish(benchmark: Any, stage: ObservabilityStage) -> None:
    contexts = [_ctx(i) for i in range(30)]
    loop = asyncio.new_event_loop()
    loop.run_until_complete(stage.start())  # the log batches lines as it does in the server
    sink: list[bytes] = stage._sink_ref  # type: ignore[attr-defined]

    def finish(i: int) -> None:
        ctx = contexts[i % 30]
        coro = stage.on_finish(ctx)
        try:
            coro.send(None)
        except StopIteration:
            pass
        stage._tracked.clear()
        if len(sink) > 1000:
            sink.clear()

    try:
        _report("on_finish (metrics + stats + JSON log line)", finish, benchmark)
    finally:
        loop.close()
