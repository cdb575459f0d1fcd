"""Tenant identification and policy enforcement: who is calling (virtual key or `x-fastroute-app`), and
what their application may use (tiers, models, latency class, cache). The first governance stage.

Sets `ctx.tenant`, `ctx.allowed_tiers`, `ctx.latency_class`, `ctx.cache_allowed` and `ctx.governance`
(the policy snapshot every later governance stage reads, so a reload never changes a request midway).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastroute.catalogue import Catalogue
from fastroute.errors import AuthenticationError, InvalidRequest, PermissionDenied
from fastroute.governance.policy import DEFAULT_APP, Application, Department, Policy
from fastroute.governance.policy_load import hash_key
from fastroute.governance.runtime import GovernanceRuntime
from fastroute.governance.state import Line
from fastroute.pipeline import RequestContext, Stage, Tenant
from fastroute.routing.decision import RouteDecision
from fastroute.routing.router import tier_rank

APP_HEADER = "x-fastroute-app"
POLICY_HEADER = "x-fastroute-policy"  # the request's policy decisions, e.g. "pii:redact:email"
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(slots=True)
class RequestGovernance:
    """One request's governance state: the policy it started under, its reservation and rate lines."""

    policy: Policy
    app: Application
    department: Department
    reservation: tuple[str, tuple[Line, ...]] | None = None
    tpm_lines: tuple[Line, ...] = ()
    compliance: Any = None  # the compliance stage's plan for this request's application, once worked out


def note(ctx: RequestContext, decision: str) -> dict[str, str]:
    """Records a policy decision (ledger, metrics) and shows it to the client; returns the header to put
    on an error response when the decision refuses the request."""
    ctx.decisions.append(decision)
    shown = ("pii", "policy", "cost", "budget", "ratelimit", "rule", "residency")
    value = ",".join(d for d in ctx.decisions if d.split(":", 1)[0] in shown)
    ctx.response_headers[POLICY_HEADER] = value
    return {POLICY_HEADER: value}


def governance_of(ctx: RequestContext) -> RequestGovernance | None:
    gov = ctx.governance
    return gov if isinstance(gov, RequestGovernance) else None


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization") or headers.get("authorization")
    if not value or not value[:7].lower() == "bearer ":
        return None
    token = value[7:].strip()
    return token or None


def resolve_tenant(policy: Policy, headers: Mapping[str, str]) -> tuple[Tenant, Application]:
    """The caller's tenant and application under `policy`; refuses with 401 / 403 / 400."""
    token = bearer_token(headers) if policy.keys_enabled else None
    if token is not None:
        key = policy.keys.get(hash_key(token))
        if key is None:
            raise AuthenticationError("Invalid API key: it is not a virtual key of this gateway.")
        app = policy.applications[key.app]
        return Tenant(app=app.name, department=app.department, key_id=key.key_id), app
    if policy.require_keys:
        raise AuthenticationError("This gateway requires a virtual API key (Authorization: Bearer <key>).")
    name = headers.get(APP_HEADER)
    if name is None or name == "":
        if policy.require_app:
            raise PermissionDenied(f"This gateway requires the {APP_HEADER} header naming a known application.")
        name = DEFAULT_APP
    if not _APP_NAME.match(name):
        raise InvalidRequest(f"'{APP_HEADER}' must be letters, digits, '.', '_' or '-' (max 64).", param=APP_HEADER)
    found = policy.application(name)
    if found is None:
        raise PermissionDenied(f"Unknown application {name!r}: it is not declared in the gateway's policy.")
    return Tenant(app=found.name, department=found.department, key_id=None), found


Resolved = tuple[Tenant, Application, Department]
_MEMO_MAX = 10_000  # ad-hoc application names (when the policy allows them) must not grow the memo forever


class TenantMemo:
    """What `resolve_tenant` found for one policy snapshot, by `x-fastroute-app` value (requests without a
    virtual key) and by key digest. A new policy object starts it afresh, so a reload applies at once;
    refusals are never kept (they are raised again, from `resolve_tenant`, every time)."""

    __slots__ = ("by_app", "by_key", "policy")

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy
        self.by_app: dict[str | None, Resolved] = {}
        self.by_key: dict[str | None, Resolved] = {}

    def resolve(self, policy: Policy, headers: Mapping[str, str]) -> Resolved:
        """`resolve_tenant(policy, headers)` and the application's department, from the memo when it can."""
        if policy is not self.policy:
            self.policy, self.by_app, self.by_key = policy, {}, {}
        token = bearer_token(headers) if policy.keys_enabled else None
        name: str | None
        if token is not None:
            memo, name = self.by_key, hash_key(token)
        elif not policy.require_keys:
            memo, name = self.by_app, headers.get(APP_HEADER)
        else:
            tenant, app = resolve_tenant(policy, headers)  # refuses: this policy requires a virtual key
            return tenant, app, policy.department(app.department)
        found = memo.get(name)
        if found is None:
            tenant, app = resolve_tenant(policy, headers)
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            found = memo[name] = (tenant, app, policy.department(app.department))
        return found


class TenantStage(Stage):
    """Identifies the tenant and applies its application's rules; owns the governance runtime lifecycle."""

    name = "tenants"

    def __init__(self, runtime: GovernanceRuntime, catalogue: Catalogue) -> None:
        self.runtime = runtime
        self.catalogue = catalogue
        self._memo = TenantMemo()

    async def start(self) -> None:
        await self.runtime.start()

    async def close(self) -> None:
        await self.runtime.close()

    async def identify(self, headers: Mapping[str, str]) -> Tenant:
        """The tenant for `headers` under the current policy (used by other routes, e.g. feedback)."""
        return resolve_tenant(self.runtime.holder.current, headers)[0]

    async def on_request(self, ctx: RequestContext) -> None:
        policy = self.runtime.holder.current
        tenant, app, department = self._memo.resolve(policy, ctx.headers)
        ctx.tenant = tenant
        ctx.governance = RequestGovernance(policy, app, department)
        rules = app.rules
        if rules.allowed_tiers is not None:
            ctx.allowed_tiers = (
                rules.allowed_tiers if ctx.allowed_tiers is None else ctx.allowed_tiers & rules.allowed_tiers
            )
        ctx.latency_class = rules.latency_class
        ctx.cache_allowed = ctx.cache_allowed and rules.cache
        model = ctx.chat.model
        if not ctx.chat.wants_auto and rules.allowed_models is not None and model not in rules.allowed_models:
            raise PermissionDenied(
                f"The model '{model}' is not allowed for application '{app.name}' by policy.",
                param="model",
                headers=note(ctx, "policy:block:model"),
            )

    async def on_routed(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is None or ctx.decision is None or gov.app.rules.allowed_models is None:
            return
        allowed = gov.app.rules.allowed_models
        decision = ctx.decision
        chain = tuple(m for m in decision.chain if m.name in allowed)
        if chain == decision.chain:
            return
        if chain:
            ctx.decision = RouteDecision(decision.tier, chain, decision.reason + "; policy models", decision.score)
            return
        # No allowed model serves the routed tier: the nearest tier that has one, cheaper first.
        tiers = gov.app.rules.allowed_tiers or frozenset(self.catalogue.tiers)
        rank = tier_rank(decision.tier)
        for tier in sorted(tiers, key=lambda t: (abs(tier_rank(t) - rank), tier_rank(t))):
            chain = tuple(m for m in self.catalogue.tier_chain(tier) if m.name in allowed)
            if chain:
                note(ctx, f"policy:reroute:{decision.tier}->{tier}")
                ctx.decision = RouteDecision(tier, chain, decision.reason + f"; policy models -> {tier}", None)
                return
        raise PermissionDenied(
            f"No model allowed for application '{gov.app.name}' serves this request.",
            headers=note(ctx, "policy:block:model"),
        )
