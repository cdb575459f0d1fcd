"""Drives the governance and compliance stage hooks of N requests without the server, for instruction counts.

    valgrind --tool=callgrind python benchmarks/micro/governance_hooks.py 500
    valgrind --tool=callgrind python benchmarks/micro/governance_hooks.py 2500   # (difference) / 2000 per request
    python benchmarks/micro/governance_hooks.py 2500 --no-stages                  # the same loop's own share

The stages are the ones `build_governance` makes (tenants, PII, rate limits, cost ceiling, budgets; in-process
state) plus compliance, under `benchmarks/load`'s all-features policy, in pipeline order, with the requests
of `benchmarks/load`'s driver routed to the `mid` tier of the demo catalogue. Nothing suspends, so each hook's
coroutine is run with one `send` (no event loop). Not a pytest benchmark (no `test_` prefix): callgrind counts
are deterministic where timings on the shared machine are not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "load"))
from driver import Workload
from targets import BENCH_POLICY

from fastroute.chat_request import parse_chat_request
from fastroute.compliance.stage import ComplianceStage
from fastroute.governance.limits import BudgetStage, CostCeilingStage, RateLimitStage
from fastroute.governance.runtime import GovernanceRuntime
from fastroute.governance.screening import PiiStage
from fastroute.governance.settings import GovernanceSettings
from fastroute.governance.tenants import TenantStage
from fastroute.pipeline import RequestContext, Stage
from fastroute.providers.base import Usage
from fastroute.routing.decision import RouteDecision
from fastroute.simulator.demo import demo_catalogue


class Analysis:
    tokens = 60


def drive(coro: Coroutine[Any, Any, None]) -> None:
    try:
        coro.send(None)
    except StopIteration:
        return
    raise RuntimeError("a hook suspended: this driver has no event loop")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requests", type=int)
    parser.add_argument("--no-stages", action="store_true", help="the loop alone (its share of the count)")
    args = parser.parse_args(argv)
    catalogue = demo_catalogue("http://127.0.0.1:1")
    runtime = GovernanceRuntime(catalogue, GovernanceSettings(), policy_text=BENCH_POLICY)
    tenants, compliance, pii = TenantStage(runtime, catalogue), ComplianceStage(catalogue), PiiStage()
    rate, ceiling = RateLimitStage(runtime.store), CostCeilingStage(catalogue)
    budgets = BudgetStage(runtime.store, catalogue)
    requesting: list[Stage] = [tenants, compliance, pii, rate]
    routed: list[Stage] = [tenants, compliance, rate, ceiling, budgets]
    finishing: list[Stage] = [budgets, rate, compliance]  # reverse pipeline order
    if args.no_stages:
        requesting, routed, finishing = [], [], []
    workload = Workload()
    bodies = [orjson.loads(workload.body(i)) for i in range(64)]
    headers = {"content-type": "application/json"}
    chain = catalogue.tier_chain("mid")
    for i in range(args.requests):
        ctx = RequestContext(f"r{i}", headers, parse_chat_request(dict(bodies[i % 64])))
        for stage in requesting:
            drive(stage.on_request(ctx))
        ctx.analysis = Analysis()
        ctx.decision = RouteDecision("mid", chain, "scored", 0.4)
        for stage in routed:
            drive(stage.on_routed(ctx))
        ctx.served_by = ctx.decision.chain[0].name
        ctx.usage = Usage(60, 20)
        ctx.cost_usd = ctx.decision.chain[0].cost(60, 20)
        ctx.response_body = {"choices": [{"message": {"content": "Answer. The fake upstream echoes."}}]}
        for stage in finishing:
            drive(stage.on_finish(ctx))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
