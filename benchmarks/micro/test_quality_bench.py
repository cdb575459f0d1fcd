"""Benchmark: what the quality stage adds to each request (on_routed + on_finish), shadow sampling off and on.

Run: `pytest benchmarks/micro/test_quality_bench.py --benchmark-enable -s`. Times single requests' hook
pairs (one per round) for: no demotion, a demoted tier (route raised), and shadow sampling (job built and
offered; the background job itself is not timed: it never runs on the request's path). Prints p50/p99.
"""

from __future__ import annotations

import asyncio
import platform
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fastroute.chat_request import parse_chat_request
from fastroute.pipeline import RequestContext, Tenant
from fastroute.quality.settings import QualitySettings
from fastroute.quality.stage import QualityStage
from fastroute.routing.decision import RouteDecision
from fastroute.simulator.demo import demo_catalogue

CATALOGUE = demo_catalogue("http://127.0.0.1:9")
BODY = {"model": "auto", "messages": [{"role": "user", "content": "What is the capital of France? " * 4}]}


def _ctx() -> RequestContext:
    ctx = RequestContext(request_id="r", headers={}, chat=parse_chat_request(BODY), tenant=Tenant(app="app"))
    ctx.decision = RouteDecision("budget", CATALOGUE.tier_chain("budget"), "length heuristic tokens=30", None)
    return ctx


async def _hooks(stage: QualityStage, n: int) -> list[float]:
    times = []
    for _ in range(n):
        ctx = _ctx()
        t0 = time.perf_counter()
        await stage.on_routed(ctx)
        ctx.served_by = ctx.decision.model.name if ctx.decision else None
        ctx.response_body = {"choices": [{"message": {"content": "Paris is the capital of France."}}]}
        await stage.on_finish(ctx)
        times.append(time.perf_counter() - t0)
        stage.store._pending.clear()  # the writer thread's batching is not on the request path
    return times


@pytest.mark.parametrize("case", ["plain", "demoted", "shadow-sampled"])
def test_quality_stage_hooks(benchmark: Any, tmp_path: Path, case: str) -> None:
    settings = QualitySettings(min_samples=1, window=1, shadow_rate=1.0 if case == "shadow-sampled" else 0.0)
    stage = QualityStage(settings, CATALOGUE, tmp_path)
    if case == "demoted":
        stage.recalibrator.observe("app", "budget", False)
    if stage.settings.shadow_enabled:
        stage.bind(SimpleNamespace(providers={}, timeouts=None))
        assert stage.shadow is not None
        stage.shadow.budget.limit_usd = 0.0  # offers are refused after the reservation check: no task runs

    def run() -> list[float]:
        return asyncio.run(_hooks(stage, 2000))

    times = sorted(benchmark.pedantic(run, rounds=1, iterations=1))
    p50, p99 = times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6
    benchmark.extra_info.update(p50_us=round(p50, 2), p99_us=round(p99, 2), machine=platform.processor())
    print(f"\nquality stage {case}: p50 {p50:.1f} us, p99 {p99:.1f} us")
