"""Policy validation: inheritance, virtual keys, and precise error messages (file, path, what is wrong)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastroute.catalogue import Catalogue
from fastroute.errors import AuthenticationError, PermissionDenied
from fastroute.governance.holder import PolicyFileWatcher, PolicyHolder
from fastroute.governance.pii import PiiScanner
from fastroute.governance.policy import Policy
from fastroute.governance.policy_load import PolicyError, hash_key, load_policy, parse_policy
from fastroute.governance.tenants import resolve_tenant
from fastroute.simulator.demo import demo_catalogue

CAT = demo_catalogue("http://127.0.0.1:1")

GOOD = f"""
defaults: {{pii: detect, rpm: 100}}
departments:
  finance:
    allowed_tiers: [budget, mid]
    budgets: {{daily_usd: 20, monthly_usd: 300, action: downgrade}}
    tpm: 50000
applications:
  billing:
    department: finance
    max_cost_per_request_usd: 0.05
    budgets: {{daily_usd: 5}}
    pii: block
    cache: false
    keys: [{{id: billing-prod, sha256: {hash_key("sk-billing")}}}]
  research:
    allowed_models: [sim-frontier, sim-budget]
    latency_class: batch
pii:
  patterns: [{{name: employee_id, regex: 'EMP-[0-9]{{6}}'}}]
"""


def parse(text: str, catalogue: Catalogue | None = CAT) -> Policy:
    return parse_policy(text, source="policy.yaml", catalogue=catalogue, scanner_factory=PiiScanner)


def test_good_policy_inherits_department_then_defaults() -> None:
    p = parse(GOOD)
    billing, research = p.applications["billing"], p.applications["research"]
    assert billing.rules.allowed_tiers == frozenset({"budget", "mid"})  # from finance
    assert billing.rules.pii == "block" and billing.rules.cache is False and billing.rules.rpm == 100
    assert billing.budget.daily_usd == 5 and billing.budget.action == "block"
    assert p.departments["finance"].budget.action == "downgrade" and p.departments["finance"].tpm == 50000
    assert research.department == "default" and research.rules.pii == "detect"
    assert research.rules.allowed_models == frozenset({"sim-frontier", "sim-budget"})
    assert research.rules.latency_class == "batch"
    assert p.keys[hash_key("sk-billing")].app == "billing"
    assert "sk-billing" not in repr(p.keys)
    assert isinstance(p.scanner, PiiScanner) and "employee_id" in p.scanner.kinds


@pytest.mark.parametrize(
    ("edit", "path", "what"),
    [
        (("daily_usd: 5", "daily_usd: lots"), "applications.billing.budgets.daily_usd", "must be a number"),
        (("daily_usd: 5", "daily_usd: -1"), "applications.billing.budgets.daily_usd", ">= 0"),
        (("department: finance", "department: sales"), "applications.billing.department", "unknown department"),
        (("[budget, mid]", "[budget, turbo]"), "departments.finance.allowed_tiers[1]", "unknown tier 'turbo'"),
        (("[sim-frontier, sim-budget]", "[sim-frontier, gpt-9]"), "applications.research.allowed_models[1]",
         "unknown model 'gpt-9'"),
        (("pii: block", "pii: shred"), "applications.billing.pii", "must be one of off, detect, redact, block"),
        (("cache: false", "cache: maybe"), "applications.billing.cache", "true or false"),
        (("action: downgrade", "action: panic"), "departments.finance.budgets.action", "block, downgrade"),
        (("latency_class: batch", "latency: batch"), "applications.research.latency", "unknown field"),
        (("regex: 'EMP-[0-9]{6}'", "regex: 'EMP-([0-9]'"), "pii.patterns[0].regex", "invalid regular expression"),
        (("tpm: 50000", "tpm: 1.5"), "departments.finance.tpm", "whole number"),
    ],
)
def test_errors_name_file_path_and_problem(edit: tuple[str, str], path: str, what: str) -> None:
    assert edit[0] in GOOD
    with pytest.raises(PolicyError) as err:
        parse(GOOD.replace(edit[0], edit[1]))
    message = str(err.value)
    assert message.startswith(f"policy.yaml: {path}: "), message
    assert what in message


def test_key_digest_must_be_a_hash_and_unique() -> None:
    with pytest.raises(PolicyError, match=r"applications.billing.keys\[0\].sha256: must be 64"):
        parse(GOOD.replace(hash_key("sk-billing"), "sk-billing"))
    dup = GOOD.replace("  research:\n", f"  research:\n    keys: [{{id: r1, sha256: {hash_key('sk-billing')}}}]\n")
    with pytest.raises(PolicyError, match=r"applications.research.keys\[0\]: the same key"):
        parse(dup)


def test_yaml_syntax_and_top_level_errors() -> None:
    with pytest.raises(PolicyError, match=r"policy\.yaml: invalid YAML"):
        parse("applications: [unclosed")
    with pytest.raises(PolicyError, match=r"policy\.yaml: budgetz: unknown field"):
        parse("budgetz: {}")
    with pytest.raises(PolicyError, match="require_keys: is true but no application declares keys"):
        parse("require_keys: true")


def test_empty_policy_is_permissive() -> None:
    p = parse("")
    assert p.application("anything") is not None and not p.keys_enabled


def test_tenants_by_key_or_header() -> None:
    p = parse(GOOD)
    tenant, _ = resolve_tenant(p, {"Authorization": "Bearer sk-billing"})
    assert (tenant.app, tenant.department, tenant.key_id) == ("billing", "finance", "billing-prod")
    with pytest.raises(AuthenticationError):
        resolve_tenant(p, {"Authorization": "Bearer sk-wrong"})
    tenant, _ = resolve_tenant(p, {"x-fastroute-app": "research"})
    assert tenant.app == "research"
    strict = parse(GOOD + "require_app: true\n")
    with pytest.raises(PermissionDenied):
        resolve_tenant(strict, {"x-fastroute-app": "nobody"})
    with pytest.raises(PermissionDenied):
        resolve_tenant(strict, {})
    keys_only = parse(GOOD + "require_keys: true\n")
    with pytest.raises(AuthenticationError):
        resolve_tenant(keys_only, {"x-fastroute-app": "billing"})


async def test_invalid_file_edit_never_replaces_the_valid_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    holder = PolicyHolder(load_policy(path, CAT, PiiScanner), lambda t, s: parse_policy(t, source=s, catalogue=CAT))
    watcher = PolicyFileWatcher(holder, path)
    watcher._seen = watcher._stat()
    before = holder.current
    path.write_text(GOOD.replace("daily_usd: 5", "daily_usd: five") + "\n")
    assert await watcher.check() is False
    assert holder.current is before and holder.rejected == 1
    assert "applications.billing.budgets.daily_usd" in caplog.text and "keeping policy" in caplog.text
    path.write_text(GOOD.replace("daily_usd: 5", "daily_usd: 7"))
    assert await watcher.check() is True
    assert holder.current.applications["billing"].budget.daily_usd == 7
