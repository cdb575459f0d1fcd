"""The `compliance:` section of a policy file: content rules, residency and the declared AI use per application.

Pure: parses and validates already-loaded YAML data (no file I/O, no aiohttp). Example::

    compliance:
      rules:
        medical: {keywords: [diagnosis, prescription], regexes: ['\\bICD-10\\b'], action: 'route:frontier'}
        secrets: {regexes: ['(?i)project\\s+falcon'], action: block}
        legal:   {keywords: [lawsuit], action: 'require-header:x-legal-approval'}
        tone:    {keywords: [idiot], action: flag}
      defaults: {allowed_regions: [eu, us]}
      departments:
        legal: {allowed_regions: [eu], allowed_providers: [sim-openai], allowed_retention: [none]}
      applications:
        contract-bot: {purpose: contract review, risk_class: limited, rules: [legal, secrets]}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastroute.catalogue import TIERS, Catalogue, ModelEntry, ProviderConfig
from fastroute.compliance.scanner import RuleScanner

ACTIONS = ("flag", "block", "route", "require-header")
RISK_CLASSES = ("minimal", "limited", "high", "unacceptable", "unclassified")
_RULE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_SCOPE = ("allowed_regions", "allowed_providers", "allowed_retention", "rules", "purpose", "risk_class")
_RULE = ("keywords", "regexes", "action")

Fail = Callable[[str, str], Exception]  # (path, what) -> the policy error to raise


@dataclass(frozen=True, slots=True)
class ContentRule:
    """A named rule: fires when any keyword (whole word) or regex matches; `target` for route/require-header."""

    name: str
    action: str
    target: str | None = None
    keywords: tuple[str, ...] = ()
    regexes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.action}:{self.target}" if self.target else self.action


@dataclass(frozen=True, slots=True)
class AppCompliance:
    """The effective compliance settings of one application (its own, else its department's, else defaults)."""

    allowed_regions: frozenset[str] | None = None
    allowed_providers: frozenset[str] | None = None
    allowed_retention: frozenset[str] | None = None
    rules: tuple[str, ...] | None = None  # None = every declared rule
    purpose: str | None = None
    risk_class: str = "unclassified"

    @property
    def restricted(self) -> bool:
        return any(x is not None for x in (self.allowed_regions, self.allowed_providers, self.allowed_retention))

    def allows(self, provider: ProviderConfig | None) -> bool:
        """True when a deployment of `provider` may receive this application's requests."""
        if not self.restricted:
            return True
        if provider is None:
            return False
        return (
            (self.allowed_regions is None or provider.region in self.allowed_regions)
            and (self.allowed_providers is None or provider.name in self.allowed_providers)
            and (self.allowed_retention is None or provider.retention in self.allowed_retention)
        )


@dataclass(frozen=True, slots=True)
class Compliance:
    """The compiled section: every rule (in scanner order), scopes per department / application."""

    rules: tuple[ContentRule, ...] = ()
    defaults: AppCompliance = field(default_factory=AppCompliance)
    departments: Mapping[str, AppCompliance] = field(default_factory=dict)
    applications: Mapping[str, AppCompliance] = field(default_factory=dict)
    scanner: RuleScanner | None = None

    def for_app(self, app: str, department: str) -> AppCompliance:
        return self.applications.get(app) or self.departments.get(department) or self.defaults

    def fired(self, texts: list[str], scope: AppCompliance) -> list[ContentRule]:
        """The rules of `scope` that fire on any of `texts`, in declaration order."""
        if self.scanner is None or not texts:
            return []
        hits = [self.rules[i] for i in self.scanner.scan_many(texts)]
        if scope.rules is None:
            return hits
        return [r for r in hits if r.name in scope.rules]


EMPTY = Compliance()


def parse_compliance(
    raw: Any,
    fail: Fail,
    catalogue: Catalogue | None,
    departments: Mapping[str, Any],
    applications: Mapping[str, Any],
) -> Compliance:
    """Validates the `compliance:` section; errors go through `fail(path, what)` with precise paths."""
    if raw is None:
        return EMPTY
    top = _mapping(raw, "compliance", ("rules", "defaults", "departments", "applications"), fail)
    rules = _rules(top.get("rules"), fail, catalogue)
    names = tuple(r.name for r in rules)
    defaults = _scope(top.get("defaults") or {}, "compliance.defaults", AppCompliance(), names, catalogue, fail)
    depts: dict[str, AppCompliance] = {}
    for name, spec in _named(top.get("departments"), "compliance.departments", fail).items():
        path = f"compliance.departments.{name}"
        if departments and name not in departments and name != "default":
            raise fail(path, f"unknown department {name!r} (known: {', '.join(sorted(departments))})")
        depts[name] = _scope(spec or {}, path, defaults, names, catalogue, fail)
    apps: dict[str, AppCompliance] = {}
    for name, spec in _named(top.get("applications"), "compliance.applications", fail).items():
        path = f"compliance.applications.{name}"
        app = applications.get(name)
        if app is None and applications:
            raise fail(path, f"unknown application {name!r} (known: {', '.join(sorted(applications))})")
        dept = getattr(app, "department", "default")
        apps[name] = _scope(spec or {}, path, depts.get(dept, defaults), names, catalogue, fail)
    # Applications without their own entry still inherit their department's settings.
    for name, app in applications.items():
        dept = getattr(app, "department", "default")
        if name not in apps and dept in depts:
            apps[name] = depts[dept]
    scanner = None
    if rules:
        try:
            scanner = RuleScanner([(list(r.keywords), list(r.regexes)) for r in rules])
        except ValueError as e:
            raise fail("compliance.rules", str(e)) from e
    return Compliance(rules=rules, defaults=defaults, departments=depts, applications=apps, scanner=scanner)


def _mapping(value: Any, path: str, allowed: tuple[str, ...], fail: Fail) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(path, f"must be a mapping, not {type(value).__name__}")
    for k in value:
        if k not in allowed:
            raise fail(f"{path}.{k}", f"unknown field (expected one of: {', '.join(allowed)})")
    return value


def _named(value: Any, path: str, fail: Fail) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(path, "must be a mapping of names to settings")
    return value


def _strings(value: Any, path: str, fail: Fail, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(path, "must be a list of non-empty strings")
    if not value and not allow_empty:
        raise fail(path, "must not be empty")
    return tuple(value)


def _rules(raw: Any, fail: Fail, catalogue: Catalogue | None) -> tuple[ContentRule, ...]:
    out: list[ContentRule] = []
    for name, spec in _named(raw, "compliance.rules", fail).items():
        path = f"compliance.rules.{name}"
        if not isinstance(name, str) or not _RULE_NAME.match(name):
            raise fail(path, "rule names use lowercase letters, digits, '_' or '-' (max 64)")
        r = _mapping(spec or {}, path, _RULE, fail)
        keywords = _strings(r["keywords"], f"{path}.keywords", fail) if "keywords" in r else ()
        regexes = _strings(r["regexes"], f"{path}.regexes", fail) if "regexes" in r else ()
        if not keywords and not regexes:
            raise fail(path, "needs keywords or regexes")
        for i, rx in enumerate(regexes):
            try:
                RuleScanner([([], [rx])])
            except ValueError as e:
                raise fail(f"{path}.regexes[{i}]", f"invalid regular expression: {e}") from e
        action, target = _action(r.get("action", "flag"), f"{path}.action", fail, catalogue)
        out.append(ContentRule(name=name, action=action, target=target, keywords=keywords, regexes=regexes))
    return tuple(out)


def _action(raw: Any, path: str, fail: Fail, catalogue: Catalogue | None) -> tuple[str, str | None]:
    if not isinstance(raw, str):
        raise fail(path, f"must be one of flag, block, route:<tier or model>, require-header:<name>; got {raw!r}")
    kind, _, target = raw.partition(":")
    if kind not in ACTIONS or (kind in ("flag", "block")) != (target == ""):
        raise fail(path, f"must be one of flag, block, route:<tier or model>, require-header:<name>; got {raw!r}")
    if kind == "route":
        known = set(TIERS) | (set(catalogue.models) if catalogue is not None else set())
        if catalogue is not None and target not in known:
            raise fail(path, f"unknown tier or model {target!r} (tiers: {', '.join(TIERS)}; or a catalogue model)")
    if kind == "require-header" and not _HEADER.match(target):
        raise fail(path, f"invalid header name {target!r}")
    return kind, (target.lower() if kind == "require-header" else target) or None


def _scope(
    raw: Any, path: str, base: AppCompliance, rule_names: tuple[str, ...], catalogue: Catalogue | None, fail: Fail
) -> AppCompliance:
    s = _mapping(raw, path, _SCOPE, fail)
    values: dict[str, Any] = {
        "allowed_regions": base.allowed_regions, "allowed_providers": base.allowed_providers,
        "allowed_retention": base.allowed_retention, "rules": base.rules, "purpose": base.purpose,
        "risk_class": base.risk_class,
    }
    providers = catalogue.providers if catalogue is not None else None
    for key, value in s.items():
        p = f"{path}.{key}"
        if key in ("allowed_regions", "allowed_retention"):
            values[key] = frozenset(_strings(value, p, fail))
        elif key == "allowed_providers":
            names = _strings(value, p, fail)
            for i, n in enumerate(names):
                if providers is not None and n not in providers:
                    raise fail(f"{p}[{i}]", f"unknown provider {n!r} (known: {', '.join(sorted(providers))})")
            values[key] = frozenset(names)
        elif key == "rules":
            names = _strings(value, p, fail, allow_empty=True)
            for i, n in enumerate(names):
                if n not in rule_names:
                    raise fail(f"{p}[{i}]", f"unknown rule {n!r} (declared: {', '.join(rule_names) or 'none'})")
            values[key] = names
        elif key == "purpose":
            if not isinstance(value, str) or not value.strip():
                raise fail(p, "must be a non-empty string")
            values[key] = value.strip()
        elif key == "risk_class":
            if value not in RISK_CLASSES:
                raise fail(p, f"must be one of {', '.join(RISK_CLASSES)}, got {value!r}")
            values[key] = value
    scope = AppCompliance(**values)
    if catalogue is not None and scope.restricted and not any(
        scope.allows(catalogue.providers.get(m.provider)) for m in catalogue.models.values()
    ):
        raise fail(path, "no deployment in the catalogue is inside the allowed regions/providers/retention")
    return scope


def deployment_filter(scope: AppCompliance, catalogue: Catalogue) -> Callable[[ModelEntry], bool]:
    """The predicate the dispatcher consults for every candidate deployment."""

    def allowed(model: ModelEntry) -> bool:
        return scope.allows(catalogue.providers.get(model.provider))

    return allowed
