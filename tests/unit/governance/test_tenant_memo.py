"""`TenantMemo`: what `resolve_tenant` found, kept per policy snapshot; a reload applies at once and a
refusal is never remembered."""

from __future__ import annotations

import pytest

from fastroute.errors import AuthenticationError, PermissionDenied
from fastroute.governance import tenants
from fastroute.governance.pii import PiiScanner
from fastroute.governance.policy import Policy
from fastroute.governance.policy_load import hash_key, parse_policy
from fastroute.governance.tenants import TenantMemo, resolve_tenant
from fastroute.simulator.demo import demo_catalogue

CAT = demo_catalogue("http://127.0.0.1:1")

POLICY = f"""
departments: {{finance: {{rpm: 10}}, ops: {{}}}}
applications:
  billing:
    department: finance
    keys: [{{id: billing-prod, sha256: {hash_key("sk-billing")}}}]
  research: {{department: ops}}
"""


def parse(text: str) -> Policy:
    return parse_policy(text, source="policy.yaml", catalogue=CAT, scanner_factory=PiiScanner)


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer sk-billing"}, {"x-fastroute-app": "research"}, {"x-fastroute-app": "adhoc-1"}, {}],
)
def test_memo_answers_what_resolve_tenant_answers(headers: dict[str, str]) -> None:
    policy, memo = parse(POLICY), TenantMemo()
    tenant, app = resolve_tenant(policy, headers)
    first = memo.resolve(policy, headers)
    assert first == (tenant, app, policy.department(app.department))
    assert memo.resolve(policy, headers) is first  # the second request is a lookup


def test_a_new_policy_applies_at_once() -> None:
    memo = TenantMemo()
    old = parse(POLICY)
    assert memo.resolve(old, {"x-fastroute-app": "research"})[0].department == "ops"
    assert memo.resolve(old, {"Authorization": "Bearer sk-billing"})[0].key_id == "billing-prod"
    new = parse(
        POLICY.replace("research: {department: ops}", "research: {department: finance}").replace(
            hash_key("sk-billing"), hash_key("sk-rotated")
        )
    )
    tenant, _, department = memo.resolve(new, {"x-fastroute-app": "research"})
    assert tenant.department == "finance" and department.rpm == 10
    with pytest.raises(AuthenticationError):  # the rotated-out key stops working with the reload
        memo.resolve(new, {"Authorization": "Bearer sk-billing"})
    assert memo.resolve(new, {"Authorization": "Bearer sk-rotated"})[0].key_id == "billing-prod"
    assert memo.resolve(old, {"Authorization": "Bearer sk-billing"})[0].key_id == "billing-prod"  # and back


def test_refusals_are_not_remembered() -> None:
    memo, strict = TenantMemo(), parse("require_app: true\n" + POLICY)
    for _ in range(2):
        with pytest.raises(PermissionDenied):
            memo.resolve(strict, {"x-fastroute-app": "nobody"})
        with pytest.raises(PermissionDenied):
            memo.resolve(strict, {})
    keys_only = parse("require_keys: true\n" + POLICY)
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            memo.resolve(keys_only, {"x-fastroute-app": "billing"})
    assert not memo.by_app and not memo.by_key


def test_ad_hoc_names_cannot_grow_it_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tenants, "_MEMO_MAX", 8)
    memo, policy = TenantMemo(), parse(POLICY)
    for i in range(50):
        assert memo.resolve(policy, {"x-fastroute-app": f"app-{i}"})[0].app == f"app-{i}"
        assert len(memo.by_app) <= 8
