"""`ComplianceStage`: content rules on prompts (and `flag` on responses) and residency per application.

Reads the policy snapshot governance put on the context; owns no state of its own. Records every outcome
in `ctx.decisions` (`rule:<action>:<name>`, `region:<region>`), which the ledger keeps per request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fastroute.catalogue import TIERS, Catalogue, ModelEntry
from fastroute.compliance.policy import AppCompliance, Compliance, ContentRule, deployment_filter
from fastroute.errors import PermissionDenied, PolicyViolation, ResidencyUnavailable, UpstreamError
from fastroute.governance.pii import message_texts
from fastroute.governance.snapshot_memo import SnapshotMemo
from fastroute.governance.tenants import RequestGovernance, governance_of, note
from fastroute.pipeline import RequestContext, Stage
from fastroute.routing.decision import RouteDecision
from fastroute.routing.router import tier_rank

log = logging.getLogger("fastroute.compliance")
OFFLOAD_CHARS = 32 * 1024


def response_text(ctx: RequestContext) -> str:
    """The answer's text as the client got it (streamed pieces, or the whole body's message contents)."""
    if ctx.streamed_text:
        return "".join(ctx.streamed_text)
    body = ctx.response_body or ctx.cached_body
    if not body:
        return ""
    parts = []
    for choice in body.get("choices") or []:
        content = (choice.get("message") or {}).get("content") if isinstance(choice, dict) else None
        if isinstance(content, str):
            parts.append(content)
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class AppPlan:
    """What one application's compliance scope means for a request, worked out once per policy snapshot:
    `allowed` the deployment filter (None when unrestricted), `scans_prompts` whether any rule of the scope
    can fire, `flags_responses` whether any of them is a `flag` rule (the only kind applied to answers)."""

    compliance: Compliance
    scope: AppCompliance
    allowed: Callable[[ModelEntry], bool] | None
    scans_prompts: bool
    flags_responses: bool


def app_plan(comp: Compliance, scope: AppCompliance, catalogue: Catalogue) -> AppPlan:
    in_scope = [r for r in comp.rules if scope.rules is None or r.name in scope.rules]
    scanning = comp.scanner is not None and bool(in_scope)
    return AppPlan(
        compliance=comp,
        scope=scope,
        allowed=deployment_filter(scope, catalogue) if scope.restricted else None,
        scans_prompts=scanning,
        flags_responses=scanning and any(r.action == "flag" for r in in_scope),
    )


class ComplianceStage(Stage):
    """Applies the `compliance:` section of the request's policy snapshot (right after tenant identification)."""

    name = "compliance"

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        # Plans by (application, department) for one compliance section: a reload brings a new section
        # object, which starts the memo afresh.
        self._plans: SnapshotMemo[tuple[str, str], AppPlan] = SnapshotMemo()

    def _plan(self, gov: RequestGovernance) -> AppPlan | None:
        """The plan for the request's application under its policy snapshot (kept on `gov` for its later hooks)."""
        plan = gov.compliance
        if isinstance(plan, AppPlan):
            return plan
        comp = gov.policy.compliance
        if not isinstance(comp, Compliance):
            return None
        key = (gov.app.name, gov.app.department)
        plan = self._plans.get(comp, key)
        if plan is None:
            plan = self._plans.put(key, app_plan(comp, comp.for_app(*key), self.catalogue))
        gov.compliance = plan
        return plan

    async def on_request(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is None or (plan := self._plan(gov)) is None:
            return
        if plan.allowed is not None:
            ctx.deployment_allowed = plan.allowed
        if not plan.scans_prompts:  # no rule of this application's scope can fire
            return
        comp, scope = plan.compliance, plan.scope
        texts = [t for _, _, t in message_texts(ctx.chat.messages)]
        if sum(map(len, texts)) > OFFLOAD_CHARS:  # ~3 us per KB: long prompts scan off the event loop
            fired = await asyncio.get_running_loop().run_in_executor(None, comp.fired, texts, scope)
        else:
            fired = comp.fired(texts, scope)
        route: ContentRule | None = None
        for rule in fired:
            if rule.action == "block":
                raise PolicyViolation(
                    f"The request matches content rule '{rule.name}' of the policy of application "
                    f"'{gov.app.name}', which blocks it.",
                    param="messages",
                    headers=note(ctx, f"rule:block:{rule.name}"),
                )
            if rule.action == "require-header":
                assert rule.target is not None
                if not ctx.headers.get(rule.target, "").strip():
                    raise PermissionDenied(
                        f"The request matches content rule '{rule.name}': the policy of application "
                        f"'{gov.app.name}' requires the '{rule.target}' header for it.",
                        param=rule.target,
                        headers=note(ctx, f"rule:require-header:{rule.name}:missing"),
                    )
                note(ctx, f"rule:require-header:{rule.name}:present")
            elif rule.action == "route":
                route = route or rule  # the first declared routing rule wins
            else:
                note(ctx, f"rule:flag:{rule.name}")
        if route is not None:
            note(ctx, f"rule:route:{route.name}:{route.target}")
            ctx.compliance_route = route.target

    async def on_routed(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is None or ctx.decision is None or self._plan(gov) is None:
            return
        decision = ctx.decision
        target = ctx.compliance_route
        allowed_models = gov.app.rules.allowed_models
        if target is None and allowed_models is None and ctx.deployment_allowed is None and decision.chain:
            return  # nothing to filter or reroute: the decision stands as it is
        if target is not None:
            decision = self._routed(decision, target)
        chain = tuple(
            m for m in decision.chain
            if (allowed_models is None or m.name in allowed_models)
            and (ctx.deployment_allowed is None or ctx.deployment_allowed(m))
        )
        if not chain and target is None:
            chain, decision = self._nearest_allowed(ctx, decision)
        if not chain:
            raise ResidencyUnavailable(
                f"No deployment inside the regions/providers allowed for application '{gov.app.name}' "
                f"can serve this request.",
                headers=note(ctx, "residency:block"),
            )
        if chain != decision.chain or decision is not ctx.decision:
            ctx.decision = RouteDecision(decision.tier, chain, decision.reason + "; compliance", decision.score)

    def _routed(self, decision: RouteDecision, target: str) -> RouteDecision:
        if target in TIERS:
            return RouteDecision(target, self.catalogue.tier_chain(target), f"content rule -> {target}", None)
        model = self.catalogue.models[target]
        rest = tuple(m for m in self.catalogue.tier_chain(model.tier) if m.name != model.name)
        return RouteDecision(model.tier, (model, *rest), f"content rule -> {target}", None)

    def _nearest_allowed(
        self, ctx: RequestContext, decision: RouteDecision
    ) -> tuple[tuple[ModelEntry, ...], RouteDecision]:
        """The nearest tier (cheaper first) with a deployment inside the allowed set, for `auto` requests."""
        if not ctx.chat.wants_auto or ctx.deployment_allowed is None:
            return (), decision
        tiers = ctx.allowed_tiers or frozenset(self.catalogue.tiers)
        rank = tier_rank(decision.tier)
        for tier in sorted(tiers, key=lambda t: (abs(tier_rank(t) - rank), tier_rank(t))):
            chain = tuple(m for m in self.catalogue.tier_chain(tier) if ctx.deployment_allowed(m))
            if chain:
                note(ctx, f"residency:reroute:{decision.tier}->{tier}")
                return chain, RouteDecision(tier, chain, decision.reason + f"; residency -> {tier}", None)
        return (), decision

    async def on_finish(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is None or (plan := self._plan(gov)) is None:
            return
        comp, scope = plan.compliance, plan.scope
        if ctx.served_by is not None:
            model = self.catalogue.models.get(ctx.served_by)
            provider = self.catalogue.providers.get(model.provider) if model is not None else None
            if provider is not None:
                ctx.decisions.append(f"region:{provider.region}")
        elif scope.restricted and isinstance(ctx.error, UpstreamError):
            ctx.decisions.append("residency:exhausted")  # every allowed deployment failed; none outside was tried
        if ctx.status < 400 and plan.flags_responses:
            text = response_text(ctx)
            if len(text) > OFFLOAD_CHARS:
                fired = await asyncio.get_running_loop().run_in_executor(None, comp.fired, [text], scope)
            else:
                fired = comp.fired([text] if text else [], scope)
            for rule in fired:
                if rule.action == "flag":
                    ctx.decisions.append(f"rule:flag-response:{rule.name}")
                    log.info("request %s: response flagged by rule %s", ctx.request_id, rule.name)
