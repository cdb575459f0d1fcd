"""`ComplianceStage`'s per-policy plans: worked out once per (policy snapshot, application), never stale
after a reload, and skipping only work that could not change the outcome."""

from __future__ import annotations

import pytest

from fastroute.chat_request import parse_chat_request
from fastroute.compliance.policy import Compliance
from fastroute.compliance.stage import ComplianceStage, app_plan
from fastroute.errors import PolicyViolation
from fastroute.governance.pii import PiiScanner
from fastroute.governance.policy import Policy
from fastroute.governance.policy_load import parse_policy
from fastroute.governance.tenants import RequestGovernance
from fastroute.pipeline import RequestContext
from fastroute.routing.decision import RouteDecision
from fastroute.simulator.demo import demo_catalogue

CAT = demo_catalogue("http://127.0.0.1:1")

POLICY = """
departments: {legal: {}}
applications:
  eu-bot: {department: legal}
  free-bot: {}
  quiet-bot: {}
compliance:
  rules:
    falcon: {regexes: ['(?i)project\\s+falcon'], action: block}
    tone: {keywords: [idiot]}
  defaults: {rules: [falcon, tone]}
  departments:
    legal: {allowed_regions: [eu], rules: [falcon]}
  applications:
    quiet-bot: {rules: []}
"""


def parse(text: str) -> Policy:
    return parse_policy(text, source="p.yaml", catalogue=CAT, scanner_factory=PiiScanner)


def context(policy: Policy, app: str, prompt: str) -> RequestContext:
    chat = parse_chat_request({"model": "auto", "messages": [{"role": "user", "content": prompt}]})
    ctx = RequestContext("r", {}, chat)
    application = policy.application(app)
    assert application is not None
    ctx.governance = RequestGovernance(policy, application, policy.department(application.department))
    return ctx


def test_plan_flags() -> None:
    comp = parse(POLICY).compliance
    assert isinstance(comp, Compliance)
    free = app_plan(comp, comp.for_app("free-bot", "default"), CAT)
    eu = app_plan(comp, comp.for_app("eu-bot", "legal"), CAT)
    quiet = app_plan(comp, comp.for_app("quiet-bot", "default"), CAT)
    assert (free.scans_prompts, free.flags_responses, free.allowed) == (True, True, None)
    assert (eu.scans_prompts, eu.flags_responses) == (True, False) and eu.allowed is not None
    assert (quiet.scans_prompts, quiet.flags_responses) == (False, False)
    assert app_plan(Compliance(), Compliance().defaults, CAT) == app_plan(Compliance(), Compliance().defaults, CAT)


async def test_a_reload_applies_to_the_next_request() -> None:
    stage, old = ComplianceStage(CAT), parse(POLICY)
    with pytest.raises(PolicyViolation):
        await stage.on_request(context(old, "free-bot", "about project falcon"))
    relaxed = parse(POLICY.replace("defaults: {rules: [falcon, tone]}", "defaults: {rules: [tone]}"))
    await stage.on_request(context(relaxed, "free-bot", "about project falcon"))  # no longer blocked
    with pytest.raises(PolicyViolation):  # a request still holding the old snapshot keeps its rules
        await stage.on_request(context(old, "free-bot", "about project falcon"))
    moved = parse(POLICY.replace("eu-bot: {department: legal}", "eu-bot: {}"))
    ctx = context(moved, "eu-bot", "hello")
    await stage.on_request(ctx)
    assert ctx.deployment_allowed is None  # no longer in the EU-only department
    ctx = context(old, "eu-bot", "hello")
    await stage.on_request(ctx)
    assert ctx.deployment_allowed is not None and not ctx.deployment_allowed(CAT.models["sim-frontier"])


async def test_response_flags_only_for_applications_with_flag_rules() -> None:
    stage, policy = ComplianceStage(CAT), parse(POLICY)
    for app, flagged in (("free-bot", True), ("eu-bot", False), ("quiet-bot", False)):
        ctx = context(policy, app, "hello")
        await stage.on_request(ctx)
        ctx.response_body = {"choices": [{"message": {"content": "you idiot"}}]}
        await stage.on_finish(ctx)
        assert ("rule:flag-response:tone" in ctx.decisions) is flagged, app


async def test_routed_decision_is_left_alone_when_nothing_applies() -> None:
    stage, policy = ComplianceStage(CAT), parse(POLICY)
    ctx = context(policy, "free-bot", "hello")
    await stage.on_request(ctx)
    decision = ctx.decision = RouteDecision("mid", CAT.tier_chain("mid"), "scored", 0.4)
    await stage.on_routed(ctx)
    assert ctx.decision is decision
    ctx = context(policy, "eu-bot", "hello")
    await stage.on_request(ctx)
    ctx.decision = RouteDecision("frontier", CAT.tier_chain("frontier"), "scored", 0.9)
    await stage.on_routed(ctx)
    assert ctx.decision.chain and all(ctx.deployment_allowed(m) for m in ctx.decision.chain)  # type: ignore[misc]
