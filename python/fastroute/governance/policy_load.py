"""Parses and validates a policy file (YAML) into a `Policy`; every error names file, path and problem.

Owns validation only (no I/O beyond reading the one file it is asked to). Example::

    require_app: true
    defaults: {pii: redact, allowed_tiers: [budget, mid, frontier]}
    departments:
      finance:
        allowed_tiers: [budget, mid]          # default for finance's applications
        budgets: {daily_usd: 20, monthly_usd: 300, action: downgrade}   # shared by the department
        rpm: 600                              # shared by the department
    applications:
      billing:
        department: finance
        max_cost_per_request_usd: 0.05
        max_cost_action: downgrade
        budgets: {daily_usd: 5, action: block}
        rpm: 60
        tpm: 100000
        latency_class: realtime
        pii: block
        cache: false
        allowed_models: [sim-budget, sim-mid]
        keys: [{id: billing-prod, sha256: <hex of sha256(key)>}]
    pii:
      patterns: [{name: employee_id, regex: 'EMP-\\d{6}'}]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from fastroute.catalogue import TIERS, Catalogue
from fastroute.compliance.policy import parse_compliance
from fastroute.env_values import SettingsError
from fastroute.governance.policy import (
    DEFAULT_DEPARTMENT,
    LATENCY_CLASSES,
    LIMIT_ACTIONS,
    PII_ACTIONS,
    Application,
    Budget,
    Department,
    PiiPattern,
    Policy,
    Rules,
    VirtualKey,
)


class PolicyError(SettingsError):
    """The policy is invalid; the message reads `<file>: <path>: <what is wrong>`."""


ScannerFactory = Callable[[tuple[PiiPattern, ...]], Any]

_RULE_FIELDS = (
    "allowed_tiers", "allowed_models", "max_cost_per_request_usd", "max_cost_action", "latency_class", "pii", "cache",
)
_TOP = ("version", "require_keys", "require_app", "admin_token_sha256", "defaults", "departments",
        "applications", "pii", "compliance")
_DEFAULTS = (*_RULE_FIELDS, "rpm", "tpm")
_DEPARTMENT = (*_RULE_FIELDS, "rpm", "tpm", "budgets")
_APPLICATION = (*_RULE_FIELDS, "rpm", "tpm", "budgets", "department", "keys")
_BUDGET = ("daily_usd", "monthly_usd", "action")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def hash_key(key: str) -> str:
    """The stored form of a virtual API key (or admin token): SHA-256 hex of its UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_policy(
    path: Path, catalogue: Catalogue | None = None, scanner_factory: ScannerFactory | None = None
) -> Policy:
    """Reads and validates the policy file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(f"{path}: cannot read the policy file: {e.strerror}") from e
    return parse_policy(text, source=str(path), catalogue=catalogue, scanner_factory=scanner_factory)


def parse_policy(
    text: str, *, source: str, catalogue: Catalogue | None = None, scanner_factory: ScannerFactory | None = None
) -> Policy:
    """Validates policy text (YAML, or JSON which is YAML) from `source`; raises `PolicyError`."""
    try:
        raw = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as e:
        raise PolicyError(f"{source}: invalid YAML: {e}") from e
    if raw is None:
        raw = {}
    return _Checker(source, catalogue).policy(raw, text, scanner_factory)


class _Checker:
    def __init__(self, source: str, catalogue: Catalogue | None) -> None:
        self.source = source
        self.catalogue = catalogue

    def fail(self, path: str, what: str) -> PolicyError:
        return PolicyError(f"{self.source}: {path}: {what}" if path else f"{self.source}: {what}")

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path or "(top level)", f"must be a mapping, not {type(value).__name__}")
        for k in value:
            if not isinstance(k, str) or k not in allowed:
                raise self.fail(_join(path, str(k)), f"unknown field (expected one of: {', '.join(allowed)})")
        return value

    def number(self, value: Any, path: str, *, integer: bool = False) -> float | None:
        if value is None:
            return None
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            kind = "a whole number" if integer else "a number"
            raise self.fail(path, f"must be {kind}, got {value!r}")
        if value != value or value < 0 or value in (float("inf"),):
            raise self.fail(path, f"must be a finite number >= 0, got {value!r}")
        return float(value)

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        if value is False and "off" in choices:
            return "off"  # YAML reads a bare `off` as false
        if not isinstance(value, str) or value not in choices:
            raise self.fail(path, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {value!r}")
        return value

    def names(
        self, value: Any, path: str, known: Mapping[str, Any] | tuple[str, ...] | None, what: str
    ) -> frozenset[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, f"must be a list of {what} names")
        for i, v in enumerate(value):
            if known is not None and v not in known:
                raise self.fail(f"{path}[{i}]", f"unknown {what} {v!r} (known: {', '.join(sorted(known))})")
        return frozenset(value)

    def rules(self, raw: Mapping[str, Any], path: str, base: Rules) -> Rules:
        models = self.catalogue.models if self.catalogue is not None else None
        values: dict[str, Any] = {
            "allowed_tiers": base.allowed_tiers, "allowed_models": base.allowed_models,
            "max_cost_per_request_usd": base.max_cost_per_request_usd, "max_cost_action": base.max_cost_action,
            "rpm": base.rpm, "tpm": base.tpm, "latency_class": base.latency_class, "pii": base.pii,
            "cache": base.cache,
        }
        for name, value in raw.items():
            p = _join(path, name)
            if name == "allowed_tiers":
                values[name] = self.names(value, p, TIERS, "tier")
                if not values[name]:
                    raise self.fail(p, "allows no tier; list at least one of " + ", ".join(TIERS))
            elif name == "allowed_models":
                values[name] = self.names(value, p, models, "model")
            elif name == "max_cost_per_request_usd":
                values[name] = self.number(value, p)
            elif name == "max_cost_action":
                values[name] = self.choice(value, p, LIMIT_ACTIONS)
            elif name in ("rpm", "tpm"):
                n = self.number(value, p, integer=True)
                values[name] = int(n) if n is not None else None
            elif name == "latency_class":
                values[name] = self.choice(value, p, LATENCY_CLASSES)
            elif name == "pii":
                values[name] = self.choice(value, p, PII_ACTIONS)
            elif name == "cache":
                values[name] = self.boolean(value, p)
        rules = Rules(**values)
        if rules.allowed_models is not None and rules.allowed_tiers is not None and self.catalogue is not None:
            usable = [m for m in rules.allowed_models if self.catalogue.models[m].tier in rules.allowed_tiers]
            if not usable:
                raise self.fail(_join(path, "allowed_models"), "no listed model belongs to an allowed tier")
        return rules

    def budget(self, raw: Any, path: str) -> Budget:
        if raw is None:
            return Budget()
        b = self.mapping(raw, path, _BUDGET)
        return Budget(
            daily_usd=self.number(b.get("daily_usd"), _join(path, "daily_usd")),
            monthly_usd=self.number(b.get("monthly_usd"), _join(path, "monthly_usd")),
            action=self.choice(b.get("action", "block"), _join(path, "action"), LIMIT_ACTIONS),
        )

    def named(self, raw: Any, path: str) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise self.fail(path, "must be a mapping of names to settings")
        for name in raw:
            if not isinstance(name, str) or not _NAME.match(name):
                raise self.fail(_join(path, str(name)), "names use letters, digits, '.', '_' or '-' (max 64)")
        return raw

    def policy(self, raw: Any, text: str, scanner_factory: ScannerFactory | None) -> Policy:
        top = self.mapping(raw, "", _TOP)
        version = top.get("version", 1)
        if version != 1:
            raise self.fail("version", f"unsupported policy version {version!r} (this gateway reads version 1)")
        defaults_raw = self.mapping(top.get("defaults") or {}, "defaults", _DEFAULTS)
        defaults = self.rules(defaults_raw, "defaults", Rules())
        departments: dict[str, Department] = {}
        dept_rules: dict[str, Rules] = {}
        for name, spec in self.named(top.get("departments"), "departments").items():
            path = f"departments.{name}"
            d = self.mapping(spec or {}, path, _DEPARTMENT)
            rule_part = {k: v for k, v in d.items() if k in _RULE_FIELDS}
            dept_rules[name] = self.rules(rule_part, path, defaults)
            rpm = self.number(d.get("rpm"), f"{path}.rpm", integer=True)
            tpm = self.number(d.get("tpm"), f"{path}.tpm", integer=True)
            departments[name] = Department(
                name=name, budget=self.budget(d.get("budgets"), f"{path}.budgets"),
                rpm=int(rpm) if rpm is not None else None, tpm=int(tpm) if tpm is not None else None,
            )
        applications: dict[str, Application] = {}
        keys: dict[str, VirtualKey] = {}
        key_ids: set[str] = set()
        for name, spec in self.named(top.get("applications"), "applications").items():
            path = f"applications.{name}"
            a = self.mapping(spec or {}, path, _APPLICATION)
            dept = a.get("department", DEFAULT_DEPARTMENT)
            if not isinstance(dept, str) or (departments and dept != DEFAULT_DEPARTMENT and dept not in departments):
                known = ", ".join(sorted(departments)) or "none declared"
                raise self.fail(f"{path}.department", f"unknown department {dept!r} (known: {known})")
            own = {k: v for k, v in a.items() if k in (*_RULE_FIELDS, "rpm", "tpm")}
            rules = self.rules(own, path, dept_rules.get(dept, defaults))
            applications[name] = Application(
                name=name, department=dept, rules=rules, budget=self.budget(a.get("budgets"), f"{path}.budgets")
            )
            for i, key in enumerate(self.key_list(a.get("keys"), f"{path}.keys")):
                kid, digest = key
                where = f"{path}.keys[{i}]"
                if digest in keys:
                    raise self.fail(where, f"the same key is already declared for {keys[digest].app!r}")
                if kid in key_ids:
                    raise self.fail(f"{where}.id", f"key id {kid!r} is used twice")
                key_ids.add(kid)
                keys[digest] = VirtualKey(key_id=kid, app=name)
        require_keys = self.boolean(top.get("require_keys", False), "require_keys")
        require_app = self.boolean(top.get("require_app", False), "require_app")
        if require_keys and not keys:
            raise self.fail("require_keys", "is true but no application declares keys")
        admin = top.get("admin_token_sha256")
        if admin is not None and (not isinstance(admin, str) or not _HEX64.match(admin)):
            raise self.fail("admin_token_sha256", "must be 64 lowercase hex digits (sha256 of the token)")
        patterns = self.patterns(top.get("pii"))
        scanner = None
        if scanner_factory is not None:
            try:
                scanner = scanner_factory(patterns)
            except ValueError as e:
                raise self.fail("pii.patterns", str(e)) from e
        compliance = parse_compliance(top.get("compliance"), self.fail, self.catalogue, departments, applications)
        return Policy(
            source=self.source, digest=hashlib.sha256(text.encode("utf-8")).hexdigest(), text=text,
            require_keys=require_keys, require_app=require_app, defaults=defaults, departments=departments,
            applications=applications, keys=keys, pii_patterns=patterns, admin_token_sha256=admin, scanner=scanner,
            compliance=compliance,
        )

    def key_list(self, raw: Any, path: str) -> list[tuple[str, str]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise self.fail(path, "must be a list of {id, sha256} entries")
        out = []
        for i, item in enumerate(raw):
            where = f"{path}[{i}]"
            k = self.mapping(item, where, ("id", "sha256"))
            kid, digest = k.get("id"), k.get("sha256")
            if not isinstance(kid, str) or not _NAME.match(kid):
                raise self.fail(f"{where}.id", "required: a key id (letters, digits, '.', '_' or '-')")
            if not isinstance(digest, str) or not _HEX64.match(digest):
                raise self.fail(f"{where}.sha256", "must be 64 lowercase hex digits (sha256 of the key, never the key)")
            out.append((kid, digest))
        return out

    def patterns(self, raw: Any) -> tuple[PiiPattern, ...]:
        if raw is None:
            return ()
        section = self.mapping(raw, "pii", ("patterns",))
        items = section.get("patterns") or []
        if not isinstance(items, list):
            raise self.fail("pii.patterns", "must be a list of {name, regex} entries")
        out = []
        for i, item in enumerate(items):
            where = f"pii.patterns[{i}]"
            p = self.mapping(item, where, ("name", "regex"))
            name, regex = p.get("name"), p.get("regex")
            if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9_]{0,31}$", name):
                raise self.fail(f"{where}.name", "required: lowercase letters, digits and '_' (max 32)")
            if not isinstance(regex, str) or not regex:
                raise self.fail(f"{where}.regex", "required: a non-empty regular expression")
            try:
                re.compile(regex)
            except re.error as e:
                raise self.fail(f"{where}.regex", f"invalid regular expression: {e}") from e
            out.append(PiiPattern(name=name, regex=regex))
        return tuple(out)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
