"""Governance through the gateway: tenants and keys, models/tiers, PII actions per kind, cost ceiling,
budgets (block and downgrade), rate limits, and the admin/audit routes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from fastroute.governance.policy_load import hash_key
from fastroute.simulator.upstream import Simulator
from tests.conftest import GatewayFactory, chat_body
from tests.fakes.upstream import FaultPlan

ADMIN = {"Authorization": "Bearer admin-secret"}

POLICY = f"""
require_app: true
departments:
  finance:
    allowed_tiers: [budget, mid]
  research: {{}}
applications:
  billing:
    department: finance
    pii: redact
    keys: [{{id: billing-prod, sha256: {hash_key("sk-billing-1")}}}]
  guarded:
    department: finance
    pii: block
  watcher:
    department: research
    pii: detect
  frugal:
    department: research
    max_cost_per_request_usd: 0.0002
    max_cost_action: block
  thrifty:
    department: research
    max_cost_per_request_usd: 0.0002
    max_cost_action: downgrade
  capped:
    department: research
    budgets: {{daily_usd: 0.0012, action: block}}
  stepdown:
    department: research
    budgets: {{daily_usd: 0.001, action: downgrade}}
  limited:
    department: research
    rpm: 3
  pinned:
    department: research
    allowed_models: [sim-budget]
  scrubbed:
    department: research
    pii: redact
"""

# One sample of each kind, as a user would paste it.
PII_SAMPLES: dict[str, str] = {
    "email": "jane.doe@example.com",
    "phone": "+44 20 7946 0958",
    "credit_card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ssn": "123-45-6789",
    "ipv4": "192.168.14.201",
    "ipv6": "2001:db8:85a3::8a2e:370:7334",
    "secret": "sk-proj-Zx8QmT4vL2pN7rK1sW9yB3cD5fG6hJ0a",
}


@pytest.fixture
async def gov(make_gateway: GatewayFactory, tmp_path: Path) -> Any:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return await make_gateway(FASTROUTE_POLICY=str(path), FASTROUTE_ADMIN_TOKEN="admin-secret")


async def ask(client: Any, app: str | None = "billing", headers: dict[str, str] | None = None, **body: Any) -> Any:
    h = {"x-fastroute-app": app} if app else {}
    h.update(headers or {})
    content = body.pop("content", "What is the capital of France?")
    return await client.post("/v1/chat/completions", json=chat_body(content, **body), headers=h)


def no_trace(value: str, sent: dict[str, Any]) -> bool:
    raw = orjson.dumps(sent).decode()
    compact = re.sub(r"[\s.\-]", "", value)
    return value not in raw and compact not in re.sub(r"[\s.\-]", "", raw)


async def test_tenants_keys_and_apps(gov: Any) -> None:
    r = await ask(gov, app=None, headers={"Authorization": "Bearer sk-billing-1"})
    assert r.status == 200
    r = await ask(gov, app=None, headers={"Authorization": "Bearer sk-nope"})
    assert r.status == 401 and (await r.json())["error"]["type"] == "authentication_error"
    r = await ask(gov, app="stranger")
    assert r.status == 403 and "stranger" in (await r.json())["error"]["message"]
    r = await ask(gov, app=None)
    assert r.status == 403


async def test_models_and_tiers_follow_policy(gov: Any) -> None:
    r = await ask(gov, app="billing", model="sim-frontier")  # finance: budget and mid only
    assert r.status == 403
    r = await ask(gov, app="billing", headers={"x-fastroute-tier": "frontier"})
    assert r.status == 200 and r.headers["x-fastroute-tier"] in ("budget", "mid")
    r = await ask(gov, app="pinned", headers={"x-fastroute-tier": "mid"})
    assert r.status == 200 and r.headers["x-fastroute-model"] == "sim-budget"
    r = await ask(gov, app="pinned", model="sim-mid")
    assert r.status == 403 and "not allowed" in (await r.json())["error"]["message"]


@pytest.mark.parametrize("kind", sorted(PII_SAMPLES))
async def test_pii_redact_never_reaches_the_upstream_and_block_refuses(
    gov: Any, upstream: tuple[Simulator, FaultPlan, str], kind: str
) -> None:
    sim = upstream[0]
    value = PII_SAMPLES[kind]
    prompt = f"Please check this for me: {value} and tell me what it is."
    r = await ask(gov, app="billing", content=prompt)
    assert r.status == 200, await r.text()
    assert r.headers["x-fastroute-policy"] == f"pii:redact:{kind}"
    sent = sim.stats.bodies[-1]
    assert no_trace(value, sent), sent
    assert f"[{kind.upper()}]" in orjson.dumps(sent).decode()
    r = await ask(gov, app="billing", content=prompt, stream=True)
    assert r.status == 200
    await r.read()
    assert no_trace(value, sim.stats.bodies[-1])
    before = len(sim.stats.bodies)
    r = await ask(gov, app="guarded", content=prompt)
    assert r.status == 400
    error = (await r.json())["error"]
    assert error["code"] == "policy_violation" and kind in error["message"] and value not in error["message"]
    assert r.headers["x-fastroute-policy"] == f"pii:block:{kind}"
    assert len(sim.stats.bodies) == before  # nothing left for the upstream


async def test_pii_in_content_parts_and_detect_mode(gov: Any, upstream: tuple[Simulator, FaultPlan, str]) -> None:
    sim = upstream[0]
    body = {"model": "auto", "messages": [
        {"role": "system", "content": "Reply to ops@corp.example."},
        {"role": "user", "content": [{"type": "text", "text": "Card 5500-0000-0000-0004 was declined"}]},
    ]}
    r = await gov.post("/v1/chat/completions", json=body, headers={"x-fastroute-app": "billing"})
    assert r.status == 200
    raw = orjson.dumps(sim.stats.bodies[-1]).decode()
    assert "ops@corp.example" not in raw and "5500-0000-0000-0004" not in raw
    r = await ask(gov, app="watcher", content="mail jane.doe@example.com")
    assert r.status == 200
    assert "jane.doe@example.com" in orjson.dumps(sim.stats.bodies[-1]).decode()  # detect only
    audit = await (await gov.get("/admin/audit?app=watcher", headers=ADMIN)).json()
    assert "pii:detect:email" in audit["data"][0]["decisions"]


async def test_pii_redacted_on_the_anthropic_adapter_too(gov: Any, upstream: tuple[Simulator, FaultPlan, str]) -> None:
    sim = upstream[0]
    for stream in (False, True):
        r = await ask(gov, app="scrubbed", content="I am jane.doe@example.com, SSN 123-45-6789.",
                      headers={"x-fastroute-tier": "frontier"}, stream=stream)
        assert r.status == 200 and r.headers["x-fastroute-model"] == "sim-frontier"
        await r.read()
        sent = sim.stats.bodies[-1]
        assert "system" in sent or sent["messages"][0]["content"][0]["type"] == "text"  # Messages API shape
        assert no_trace("jane.doe@example.com", sent) and no_trace("123-45-6789", sent)


async def test_cost_ceiling_blocks_or_downgrades(gov: Any) -> None:
    long = "Explain in depth, with proofs: " + "why does the sky look blue at noon? " * 5
    r = await ask(gov, app="frugal", content=long, headers={"x-fastroute-tier": "frontier"}, max_tokens=100)
    assert r.status == 400 and "max_cost_per_request_usd" in (await r.json())["error"]["message"]
    r = await ask(gov, app="thrifty", content=long, headers={"x-fastroute-tier": "frontier"}, max_tokens=100)
    assert r.status == 200 and r.headers["x-fastroute-tier"] == "budget"
    r = await ask(gov, app="frugal", content="hi", max_tokens=20)
    assert r.status == 200


async def test_budget_blocks_with_429_then_downgrade_serves_cheaper(gov: Any) -> None:
    # worst case on mid with max_tokens=100: (~30 prompt tokens) * 8e-7 + 100 * 4e-6 ~= 0.00043
    mid = {"x-fastroute-tier": "mid"}
    statuses = [(await ask(gov, app="capped", headers=mid, max_tokens=100)).status for _ in range(8)]
    assert statuses[0] == 200 and statuses[-1] == 429
    assert set(statuses) == {200, 429}
    r = await ask(gov, app="capped", headers=mid, max_tokens=100)
    assert r.status == 429 and int(r.headers["Retry-After"]) > 0
    assert r.headers["x-fastroute-policy"] == "budget:block:applications.capped.budgets.daily_usd"
    assert (await r.json())["error"]["code"] == "budget_exceeded"
    tiers = []
    for _ in range(8):
        r = await ask(gov, app="stepdown", headers=mid, max_tokens=100)
        tiers.append(r.headers.get("x-fastroute-tier") if r.status == 200 else r.status)
        if r.headers.get("x-fastroute-tier") == "budget":
            assert r.headers["x-fastroute-policy"].startswith("budget:downgrade:applications.stepdown.budgets")
    assert "mid" in tiers and "budget" in tiers
    assert tiers.index("budget") > tiers.index("mid")
    spend = await (await gov.get("/admin/spend?group_by=app", headers=ADMIN)).json()
    by_app = {row["app"]: row for row in spend["data"]}
    assert by_app["capped"]["cost_usd"] <= 0.0012 + 1e-9
    assert by_app["capped"]["blocked"] >= 2
    assert by_app["stepdown"]["downgraded"] >= 1
    budgets = await (await gov.get("/admin/budgets", headers=ADMIN)).json()
    capped = next(b for b in budgets["data"] if b["name"] == "capped")
    assert capped["reserved_usd"] == 0 and capped["spent_usd"] == pytest.approx(by_app["capped"]["cost_usd"])


async def test_rate_limit_rpm(gov: Any) -> None:
    statuses = [(await ask(gov, app="limited")).status for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


async def test_admin_routes_need_the_token_and_filter(gov: Any) -> None:
    assert (await gov.get("/admin/spend")).status == 401
    assert (await gov.get("/admin/spend", headers={"Authorization": "Bearer wrong"})).status == 401
    await ask(gov, app="billing")
    await ask(gov, app="watcher")
    r = await gov.get("/admin/spend?department=finance&group_by=app,model&since=1h", headers=ADMIN)
    rows = (await r.json())["data"]
    assert rows and {row["app"] for row in rows} == {"billing"} and all(row["model"] for row in rows)
    r = await gov.get("/admin/spend?since=tomorrow", headers=ADMIN)
    assert r.status == 400
    r = await gov.get("/admin/spend?group_by=prompt", headers=ADMIN)
    assert r.status == 400
    audit = (await (await gov.get("/admin/audit?limit=5", headers=ADMIN)).json())["data"]
    assert audit and "prompt" not in orjson.dumps(audit).decode().replace("prompt_tokens", "")


async def test_put_policy_applies_and_rejects_invalid(gov: Any) -> None:
    assert (await ask(gov, app="newcomer")).status == 403
    r = await gov.put("/admin/policy", data=POLICY + "  newcomer: {department: research}\n", headers=ADMIN)
    assert r.status == 200 and (await r.json())["changed"] is True
    assert (await ask(gov, app="newcomer")).status == 200
    r = await gov.put("/admin/policy", data=POLICY.replace("pii: block", "pii: nuke"), headers=ADMIN)
    assert r.status == 400
    assert "applications.guarded.pii" in (await r.json())["error"]["message"]
    assert (await ask(gov, app="newcomer")).status == 200  # the previous policy stays
    current = await (await gov.get("/admin/policy", headers=ADMIN)).json()
    assert "newcomer" in current["applications"] and current["rejected"] == 1


async def test_in_process_budget_survives_a_restart_through_the_ledger(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    first = await make_gateway(FASTROUTE_POLICY=str(path))
    mid = {"x-fastroute-tier": "mid"}
    statuses = [(await ask(first, app="capped", headers=mid, max_tokens=100)).status for _ in range(5)]
    assert 429 in statuses
    await first.close()  # flushes the ledger
    second = await make_gateway(FASTROUTE_POLICY=str(path))
    r = await ask(second, app="capped", headers=mid, max_tokens=100)
    assert r.status == 429  # the spend before the restart still counts


async def test_policy_may_live_in_the_config_file(
    make_gateway: GatewayFactory, tmp_path: Path, upstream: tuple[Simulator, FaultPlan, str]
) -> None:
    config = tmp_path / "fastroute.yaml"
    config.write_text("policy:\n  require_app: true\n  applications:\n    only-me: {}\n")
    client = await make_gateway(FASTROUTE_CONFIG=str(config))
    assert (await ask(client, app="only-me")).status == 200
    assert (await ask(client, app="someone")).status == 403
    (tmp_path / "rules.yaml").write_text("require_app: true\napplications:\n  other: {}\n")
    config.write_text("policy: rules.yaml\n")
    client = await make_gateway(FASTROUTE_CONFIG=str(config))
    assert (await ask(client, app="other")).status == 200
    assert (await ask(client, app="only-me")).status == 403


async def test_escalation_never_outruns_the_budget_reservation(
    make_gateway: GatewayFactory, upstream: tuple[Simulator, FaultPlan, str], tmp_path: Path
) -> None:
    from fastroute.simulator.upstream import Fault

    _, plan, _ = upstream
    path = tmp_path / "policy.yaml"
    path.write_text("applications:\n  capped:\n    budgets: {daily_usd: 1.0}\n  free: {}\n")
    client = await make_gateway(FASTROUTE_POLICY=str(path), FASTROUTE_MODELS_DIR=str(tmp_path))  # length heuristic
    plan.add(Fault("status", status=500), model="sim-budget-1")
    r = await ask(client, app="free", content="hi")
    assert r.status == 200 and r.headers["x-fastroute-tier"] == "mid"  # reliability escalates without a budget
    plan.add(Fault("status", status=500), model="sim-budget-1")
    r = await ask(client, app="capped", content="hi")
    assert r.status >= 500  # with a budget, escalating to mid would spend more than was reserved for budget
    r = await ask(client, app="capped", content="hi")
    assert r.status == 200 and r.headers["x-fastroute-tier"] == "budget"
