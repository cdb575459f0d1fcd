"""The demo policy validates against the demo catalogue and makes budgets bite quickly."""

from __future__ import annotations

from pathlib import Path

from fastroute.governance.demo import DEMO_KEY, demo_policy_text, write_demo_policy
from fastroute.governance.pii import PiiScanner
from fastroute.governance.policy_load import load_policy, parse_policy
from fastroute.governance.tenants import resolve_tenant
from fastroute.simulator.demo import demo_catalogue


def test_demo_policy_is_valid_and_keeps_user_edits(tmp_path: Path) -> None:
    catalogue = demo_catalogue("http://127.0.0.1:1")
    policy = parse_policy(demo_policy_text(), source="demo", catalogue=catalogue, scanner_factory=PiiScanner)
    assert {"playground", "support-bot", "billing", "research-agent", "intern-tools"} <= set(policy.applications)
    tenant, _ = resolve_tenant(policy, {"Authorization": f"Bearer {DEMO_KEY}"})
    assert tenant.app == "playground" and tenant.key_id == "demo-key"
    frontier = catalogue.tier_chain("frontier")[0]
    budget = policy.applications["research-agent"].budget.daily_usd
    assert budget is not None and budget < 10 * frontier.cost(200, 300)  # bites within ten frontier answers
    path = write_demo_policy(tmp_path)
    path.write_text(demo_policy_text().replace("rpm: 30", "rpm: 31"))
    assert write_demo_policy(tmp_path) == path
    assert load_policy(path, catalogue).applications["support-bot"].rules.rpm == 31
