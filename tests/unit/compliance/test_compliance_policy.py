"""The compliance section of a policy: validation with precise paths, inheritance, residency predicate, rules."""

from __future__ import annotations

import pytest

from fastroute.catalogue import Catalogue
from fastroute.compliance.policy import Compliance
from fastroute.governance.policy_load import PolicyError, parse_policy
from fastroute.simulator.demo import demo_catalogue

CAT = demo_catalogue("http://127.0.0.1:1")

BASE = """
departments: {legal: {}}
applications:
  eu-bot: {department: legal}
  free-bot: {}
compliance:
  rules:
    medical: {keywords: [diagnosis, prescription], action: 'route:frontier'}
    falcon: {regexes: ['(?i)project\\s+falcon'], action: block}
    legal: {keywords: [lawsuit], action: 'require-header:X-Legal-Approval'}
    tone: {keywords: [idiot]}
  defaults: {rules: [medical, falcon, legal, tone]}
  departments:
    legal: {allowed_regions: [eu], purpose: legal drafting, risk_class: high, rules: [legal]}
"""


def compliance(text: str = BASE, catalogue: Catalogue | None = CAT) -> Compliance:
    comp = parse_policy(text, source="p.yaml", catalogue=catalogue).compliance
    assert isinstance(comp, Compliance)
    return comp


def test_parse_inherits_department_settings_and_resolves_actions() -> None:
    comp = compliance()
    eu = comp.for_app("eu-bot", "legal")
    assert eu.allowed_regions == frozenset({"eu"}) and eu.risk_class == "high" and eu.purpose == "legal drafting"
    free = comp.for_app("free-bot", "default")
    assert free.allowed_regions is None and not free.restricted
    rules = {r.name: r for r in comp.rules}
    assert (rules["medical"].action, rules["medical"].target) == ("route", "frontier")
    assert rules["legal"].target == "x-legal-approval" and rules["tone"].action == "flag"


def test_residency_predicate_uses_catalogue_regions() -> None:
    eu = compliance().for_app("eu-bot", "legal")
    allowed = {m.name for m in CAT.models.values() if eu.allows(CAT.providers[m.provider])}
    assert allowed == {"sim-budget", "sim-mid", "sim-frontier-openai"}
    assert not eu.allows(None)


def test_rules_fire_per_scope() -> None:
    comp = compliance()
    free, eu = comp.for_app("free-bot", "default"), comp.for_app("eu-bot", "legal")
    text = ["about project  FALCON and the lawsuit", "a diagnosis"]
    assert [r.name for r in comp.fired(text, free)] == ["medical", "falcon", "legal"]
    assert [r.name for r in comp.fired(text, eu)] == ["legal"]
    assert comp.fired(["nothing here", "pursue it"], free) == []


@pytest.mark.parametrize(
    ("fragment", "path"),
    [
        ("  rules: {x: {keywords: [a], action: explode}}", "compliance.rules.x.action"),
        ("  rules: {x: {keywords: [a], action: 'route:nowhere'}}", "compliance.rules.x.action"),
        ("  rules: {x: {regexes: ['(']}}", "compliance.rules.x.regexes[0]"),
        ("  rules: {x: {action: flag}}", "compliance.rules.x"),
        ("  rules: {Bad Name: {keywords: [a]}}", "compliance.rules.Bad Name"),
        ("  applications: {ghost: {purpose: x}}", "compliance.applications.ghost"),
        ("  applications: {bot: {risk_class: extreme}}", "compliance.applications.bot.risk_class"),
        ("  applications: {bot: {allowed_providers: [nope]}}", "compliance.applications.bot.allowed_providers[0]"),
        ("  applications: {bot: {allowed_regions: [mars]}}", "compliance.applications.bot"),
        ("  applications: {bot: {rules: [missing]}}", "compliance.applications.bot.rules[0]"),
        ("  colour: blue", "compliance.colour"),
    ],
)
def test_errors_name_the_path(fragment: str, path: str) -> None:
    text = "applications: {bot: {}}\ncompliance:\n" + fragment + "\n"
    with pytest.raises(PolicyError) as e:
        parse_policy(text, source="p.yaml", catalogue=CAT)
    assert f"p.yaml: {path}: " in str(e.value)


def test_no_section_means_no_rules_and_no_restriction() -> None:
    comp = compliance("applications: {bot: {}}\n")
    assert comp.rules == () and comp.scanner is None and not comp.for_app("bot", "default").restricted
