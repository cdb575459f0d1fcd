"""The ledger through the gateway: every request recorded once, failures included, with cost and tokens."""

from __future__ import annotations

from typing import Any

from fastroute.ledger import LedgerStage
from fastroute.simulator.upstream import Fault, Simulator
from tests.conftest import GatewayFactory, chat_body
from tests.fakes.upstream import FaultPlan


def ledger_of(client: Any) -> Any:
    from fastroute.server.keys import GATEWAY

    stage = next(s for s in client.app[GATEWAY].stages if isinstance(s, LedgerStage))
    return stage.ledger


async def test_served_streamed_and_failed_requests_are_recorded_once(
    make_gateway: GatewayFactory, upstream: tuple[Simulator, FaultPlan, str]
) -> None:
    _, plan, _ = upstream
    client = await make_gateway()
    r = await client.post("/v1/chat/completions", json=chat_body(), headers={"x-fastroute-app": "x"})
    assert r.status == 200
    cost = float(r.headers["x-fastroute-cost-usd"])
    r = await client.post("/v1/chat/completions", json=chat_body(stream=True))
    assert r.status == 200
    await r.read()
    plan.add(Fault("status", status=400), times=1)
    r = await client.post("/v1/chat/completions", json=chat_body())
    assert r.status >= 400
    r = await client.post("/v1/chat/completions", json=chat_body(model="nope"))
    assert r.status == 404
    ledger = ledger_of(client)
    recs = await ledger.records(limit=10)
    assert len(recs) == 4
    assert len({x.request_id for x in recs}) == 4
    ok = [x for x in recs if x.status == 200]
    assert len(ok) == 2 and all(x.cost_usd > 0 and x.prompt_tokens > 0 and x.model for x in ok)
    assert any(x.stream for x in ok)
    failed = [x for x in recs if x.status >= 400]
    assert all(x.cost_usd == 0 for x in failed)
    assert {x.error_code for x in failed} >= {"model_not_found"}
    total = await ledger.spend(group_by=())
    assert total[0]["requests"] == 4
    assert total[0]["cost_usd"] >= cost
