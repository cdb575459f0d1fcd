"""Compliance through the real app: content-rule actions (plain and streamed), response flags, residency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from fastroute.simulator.upstream import Fault, Simulator
from tests.conftest import GatewayFactory, chat_body
from tests.fakes.upstream import FaultPlan

POLICY = r"""
departments:
  legal: {}
applications:
  eu-bot: {department: legal}
  open-bot: {}
  us-bot: {}
compliance:
  rules:
    medical: {keywords: [diagnosis, prescription], action: 'route:frontier'}
    falcon: {regexes: ['(?i)project\s+falcon'], action: block}
    litigation: {keywords: [lawsuit], action: 'require-header:x-legal-approval'}
    insult: {keywords: [idiot], action: flag}
    budget-echo: {keywords: [sim-budget-1], action: flag}
  departments:
    legal: {allowed_regions: [eu], allowed_retention: [none]}
  applications:
    open-bot: {purpose: general assistant, risk_class: minimal}
    us-bot: {allowed_providers: [sim-anthropic]}
"""


@pytest.fixture
async def comp(make_gateway: GatewayFactory, tmp_path: Path) -> Any:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return await make_gateway(FASTROUTE_POLICY=str(path), FASTROUTE_ADMIN_TOKEN="admin-secret")


async def ask(
    client: Any, content: str, app: str = "open-bot", stream: bool = False, model: str = "auto", **headers: str
) -> Any:
    h = {"x-fastroute-app": app, **{k.replace("_", "-"): v for k, v in headers.items()}}
    body = chat_body(content, model=model, stream=stream)
    return await client.post("/v1/chat/completions", json=body, headers=h)


async def last_record(client: Any) -> dict[str, Any]:
    r = await client.get("/admin/audit?limit=1", headers={"Authorization": "Bearer admin-secret"})
    assert r.status == 200
    return (await r.json())["data"][0]  # type: ignore[no-any-return]


async def flush(client: Any) -> None:
    from fastroute.governance.admin import LEDGER

    await client.server.app[LEDGER].flush()


@pytest.mark.parametrize("stream", [False, True])
async def test_block_names_the_rule_without_echoing_the_text(comp: Any, stream: bool, upstream: Any) -> None:
    sim: Simulator = upstream[0]
    before = sim.stats.requests
    r = await ask(comp, "Summarise the status of Project   Falcon for the board", stream=stream)
    assert r.status == 400
    err = (await r.json())["error"]
    assert err["code"] == "policy_violation" and "'falcon'" in err["message"]
    assert "Falcon" not in err["message"] and "board" not in err["message"]
    assert "rule:block:falcon" in r.headers["x-fastroute-policy"]
    assert sim.stats.requests == before
    await flush(comp)
    rec = await last_record(comp)
    assert rec["status"] == 400 and "rule:block:falcon" in rec["decisions"]


@pytest.mark.parametrize("stream", [False, True])
async def test_require_header(comp: Any, stream: bool) -> None:
    r = await ask(comp, "Draft a reply to the lawsuit", stream=stream)
    assert r.status == 403
    err = (await r.json())["error"]
    assert "x-legal-approval" in err["message"] and "'litigation'" in err["message"]
    ok = await ask(comp, "Draft a reply to the lawsuit", stream=stream, x_legal_approval="ticket-42")
    assert ok.status == 200
    await ok.read()
    assert "rule:require-header:litigation:present" in ok.headers["x-fastroute-policy"]


@pytest.mark.parametrize("stream", [False, True])
async def test_route_keeps_matching_prompts_on_the_named_tier(comp: Any, stream: bool) -> None:
    plain = await ask(comp, "hi there", stream=stream)
    assert plain.headers["x-fastroute-tier"] == "budget"
    await plain.read()
    r = await ask(comp, "What does this diagnosis mean?", stream=stream)
    assert r.status == 200
    await r.read()
    assert r.headers["x-fastroute-tier"] == "frontier"
    assert "rule:route:medical:frontier" in r.headers["x-fastroute-policy"]


@pytest.mark.parametrize("stream", [False, True])
async def test_flag_on_prompt_and_on_response(comp: Any, stream: bool) -> None:
    r = await ask(comp, "you idiot, what time is it", stream=stream, model="sim-budget")
    assert r.status == 200
    body = await r.read()
    assert "rule:flag:insult" in r.headers["x-fastroute-policy"]
    if stream:
        assert b"data: [DONE]" in body  # the answer was relayed whole, not held back
    await flush(comp)
    rec = await last_record(comp)
    assert "rule:flag:insult" in rec["decisions"]
    # the budget model's answer names itself: the response flag fires though the prompt did not
    assert "rule:flag-response:budget-echo" in rec["decisions"]
    assert "rule:flag:budget-echo" not in rec["decisions"]
    assert "region:eu" in rec["decisions"]


class Recorder:
    """Wraps the fault plan and records which API flavour (provider) each upstream call used."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.calls: list[tuple[str, str]] = []

    def __call__(self, flavour: str, body: dict[str, Any]) -> Fault | None:
        self.calls.append((flavour, str(body.get("model"))))
        return self.plan(flavour, body)


async def test_residency_filters_the_chain(comp: Any, upstream: tuple[Simulator, FaultPlan, str]) -> None:
    sim, plan, _ = upstream
    rec = Recorder(plan)
    sim.fault_hook = rec
    r = await ask(comp, "What does this diagnosis mean?", app="eu-bot")
    assert r.status == 200
    assert r.headers["x-fastroute-model"] == "sim-frontier-openai"  # sim-frontier is in the US
    assert rec.calls and all(flavour == "openai" for flavour, _ in rec.calls)


@pytest.mark.parametrize("stream", [False, True])
async def test_residency_refuses_rather_than_leaking_when_every_allowed_deployment_fails(
    comp: Any, upstream: tuple[Simulator, FaultPlan, str], stream: bool
) -> None:
    sim, plan, _ = upstream
    rec = Recorder(plan)
    sim.fault_hook = rec
    plan.add(Fault("status", status=503), times=200)
    r = await ask(comp, "hi", app="eu-bot", stream=stream)
    assert r.status >= 500
    await r.read()
    assert rec.calls, "the allowed deployments were tried"
    assert all(flavour == "openai" for flavour, _ in rec.calls), rec.calls  # never the US (Anthropic) one
    plan.queue.clear()
    await flush(comp)
    record = await last_record(comp)
    assert "residency:exhausted" in record["decisions"]
    # an unrestricted app is free to use the US deployment
    rec.calls.clear()
    ok = await ask(comp, "What does this diagnosis mean?", app="open-bot", stream=stream)
    assert ok.status == 200
    await ok.read()
    assert ("anthropic", "sim-frontier-1") in rec.calls


async def test_policy_header_and_body_are_json(comp: Any) -> None:
    r = await ask(comp, "hello")
    assert r.status == 200
    assert orjson.loads(await r.read())["choices"]


async def test_report_matches_the_ledger(comp: Any) -> None:
    script = [
        ("open-bot", "you idiot", "sim-budget", {}), ("open-bot", "What does this diagnosis mean?", "auto", {}),
        ("open-bot", "Project Falcon numbers", "auto", {}), ("eu-bot", "hello there", "auto", {}),
        ("eu-bot", "the lawsuit", "auto", {}), ("eu-bot", "the lawsuit", "auto", {"x_legal_approval": "t-1"}),
        ("eu-bot", "a prescription question", "auto", {}), ("open-bot", "plain question", "sim-mid", {}),
    ]
    for app, content, model, headers in script:
        r = await ask(comp, content, app=app, model=model, **headers)
        await r.read()
    auth = {"Authorization": "Bearer admin-secret"}
    report = await (await comp.get("/admin/report?since=1h&format=json", headers=auth)).json()
    audit = (await (await comp.get("/admin/audit?limit=1000", headers=auth)).json())["data"]
    assert report["records"] == len(audit) == len(script)
    by_app = {e["app"]: e for e in report["data"]}
    for app in ("open-bot", "eu-bot"):
        mine = [a for a in audit if a["app"] == app]
        e = by_app[app]
        assert e["requests"] == len(mine)
        assert e["served"] == sum(a["status"] < 400 for a in mine)
        assert e["refused"] == sum(400 <= a["status"] < 500 for a in mine)
        models: dict[str, int] = {}
        for a in mine:
            if a["status"] < 400:
                models[a["model"]] = models.get(a["model"], 0) + 1
        assert e["models"] == models
        regions: dict[str, int] = {}
        for a in mine:
            for d in a["decisions"]:
                if d.startswith("region:"):
                    regions[d[7:]] = regions.get(d[7:], 0) + 1
        assert e["regions"] == regions
        assert sum(e["rules"].values()) == sum(d.startswith("rule:") for a in mine for d in a["decisions"])
    assert by_app["open-bot"]["purpose"] == "general assistant" and by_app["open-bot"]["risk_class"] == "minimal"
    assert by_app["open-bot"]["rules"]["falcon:block"] == 1
    assert by_app["eu-bot"]["rules"]["litigation:require-header"] == 2
    assert set(by_app["eu-bot"]["regions"]) == {"eu"}
    csv_text = await (await comp.get("/admin/report?format=csv", headers=auth)).text()
    assert "open-bot,default,general assistant,minimal,rule,falcon:block,1" in csv_text
    assert (await comp.get("/admin/report")).status == 401


async def test_long_prompts_are_scanned_off_the_loop_with_the_same_outcome(comp: Any) -> None:
    long = "plain words here. " * 3000  # ~54 KB, above the offload threshold
    r = await ask(comp, long + " and finally project falcon")
    assert r.status == 400 and "'falcon'" in (await r.json())["error"]["message"]


async def test_routed_tier_without_an_allowed_deployment(comp: Any) -> None:
    r = await ask(comp, "hi", app="us-bot")  # routes to budget, which only the EU provider serves
    assert r.status == 200
    assert r.headers["x-fastroute-model"] == "sim-frontier"
    assert "residency:reroute:budget->frontier" in r.headers["x-fastroute-policy"]
    named = await ask(comp, "hi", app="us-bot", model="sim-budget")
    assert named.status == 403
    assert (await named.json())["error"]["code"] == "residency_unavailable"
