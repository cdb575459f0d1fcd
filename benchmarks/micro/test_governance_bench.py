"""Governance cost per request on the hot path: tenant + policy, PII redact, rpm/tpm, cost ceiling, budget
reserve and settle — everything governance adds to one request. Twice: with one process's in-process state
(`MemoryStore`) and with the table `FASTROUTE_WORKERS=N` workers share (`SharedTableStore`, a file lock and a
memory-mapped file), whose difference is what sharing budgets and rate limits costs each worker's request.

Run: `pytest benchmarks/micro/test_governance_bench.py --benchmark-enable -s`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fastroute.chat_request import parse_chat_request
from fastroute.governance.limits import BudgetStage, CostCeilingStage, RateLimitStage
from fastroute.governance.runtime import GovernanceRuntime
from fastroute.governance.screening import PiiStage
from fastroute.governance.settings import GovernanceSettings
from fastroute.governance.tenants import TenantStage
from fastroute.pipeline import RequestContext
from fastroute.providers.base import Usage
from fastroute.routing.decision import RouteDecision
from fastroute.simulator.demo import demo_catalogue

POLICY = """
applications:
  app1:
    pii: redact
    rpm: 100000000
    tpm: 100000000000
    max_cost_per_request_usd: 1.0
    budgets: {daily_usd: 1000000, monthly_usd: 10000000}
"""
PROMPT = ("Please summarise the attached quarterly report and draft a reply to finance@example.com explaining "
          "the variance in Q3 operating costs. ") * 3


@pytest.mark.parametrize("state", ["memory", "shared-table"])
def test_all_governance_stages_per_request(benchmark: Any, state: str, tmp_path: Path) -> None:
    catalogue = demo_catalogue("http://127.0.0.1:1")
    table = tmp_path / "state.table" if state == "shared-table" else None
    runtime = GovernanceRuntime(catalogue, GovernanceSettings(), policy_text=POLICY, shared_table=table)
    stages = [TenantStage(runtime, catalogue), PiiStage(), RateLimitStage(runtime.store), CostCeilingStage(catalogue),
              BudgetStage(runtime.store, catalogue)]
    headers = {"x-fastroute-app": "app1"}
    chain = catalogue.tier_chain("mid")
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runtime.start())

    async def one() -> None:
        chat = parse_chat_request({"model": "auto", "max_tokens": 200,
                                   "messages": [{"role": "user", "content": PROMPT}]})
        ctx = RequestContext(request_id="r", headers=headers, chat=chat)
        for s in stages:
            await s.on_request(ctx)
        ctx.analysis = SimpleNamespace(tokens=90)
        ctx.decision = RouteDecision("mid", chain, "bench")
        for s in stages:
            await s.on_routed(ctx)
        ctx.served_by, ctx.usage, ctx.cost_usd = "sim-mid", Usage(90, 150), 0.0007
        for s in reversed(stages):
            await s.on_finish(ctx)
        assert ctx.decisions == ["pii:redact:email"]

    try:
        benchmark(lambda: loop.run_until_complete(one()))
    finally:
        loop.run_until_complete(runtime.store.close())
        loop.close()
