"""What the dispatcher adds to one upstream call (breaker check, ordering, latency stats), in-process breakers.

Run: `pytest benchmarks/micro/test_dispatcher_bench.py --benchmark-enable -s`. Each case times 5,000 calls
through `Dispatcher.complete` with an upstream call that returns at once, against awaiting that call
directly, and prints p50/p99 of the difference (also stored in `extra_info`).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from fastroute.catalogue import ModelEntry
from fastroute.chat_request import parse_chat_request
from fastroute.pipeline import RequestContext
from fastroute.providers.base import Completion, Usage
from fastroute.reliability import default_dispatcher
from fastroute.routing.decision import RouteDecision
from fastroute.simulator.demo import demo_catalogue

CAT = demo_catalogue("http://127.0.0.1:1")
CHAT = parse_chat_request({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
ANSWER = Completion({"ok": True}, Usage(10, 5))


async def upstream(model: ModelEntry) -> Completion:
    return ANSWER


def context(latency: str) -> RequestContext:
    ctx = RequestContext("r", {"x-fastroute-latency": latency}, CHAT)
    ctx.decision = RouteDecision("frontier", CAT.tier_chain("frontier"), "bench")
    return ctx


@pytest.mark.parametrize("latency", ["standard", "realtime", "batch"])
def test_dispatch_overhead(benchmark, latency: str) -> None:  # type: ignore[no-untyped-def]
    dispatcher = default_dispatcher(CAT)
    loop = asyncio.new_event_loop()

    async def through(n: int) -> np.ndarray:
        times = np.empty(n)
        for i in range(n):
            ctx = context(latency)
            t0 = time.perf_counter_ns()
            await dispatcher.complete(ctx, upstream)
            times[i] = time.perf_counter_ns() - t0
        return times

    async def direct(n: int) -> np.ndarray:
        times = np.empty(n)
        for i in range(n):
            t0 = time.perf_counter_ns()
            await upstream(CAT.models["sim-frontier"])
            times[i] = time.perf_counter_ns() - t0
        return times

    loop.run_until_complete(through(500))
    with_dispatch = loop.run_until_complete(through(5_000))
    bare = loop.run_until_complete(direct(5_000))
    p50 = float(np.percentile(with_dispatch, 50) - np.percentile(bare, 50)) / 1e3
    p99 = float(np.percentile(with_dispatch, 99) - np.percentile(bare, 99)) / 1e3
    benchmark.extra_info.update({"latency_class": latency, "p50_us": p50, "p99_us": p99})
    print(f"\ndispatch overhead ({latency}): p50 {p50:.1f} µs  p99 {p99:.1f} µs")
    benchmark(lambda: loop.run_until_complete(dispatcher.complete(context(latency), upstream)))
    loop.close()
