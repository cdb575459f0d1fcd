"""The compiled policy: immutable rules per application and department, swapped atomically on reload.

Pure data: must not import aiohttp or read files (`policy_load` parses and validates the YAML).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PII_ACTIONS: tuple[str, ...] = ("off", "detect", "redact", "block")
LIMIT_ACTIONS: tuple[str, ...] = ("block", "downgrade")
LATENCY_CLASSES: tuple[str, ...] = ("realtime", "standard", "batch")  # as reliability reads them
DEFAULT_APP = "default"
DEFAULT_DEPARTMENT = "default"


@dataclass(frozen=True, slots=True)
class Budget:
    """USD budgets per UTC day / calendar month; `action` when a request would exceed one."""

    daily_usd: float | None = None
    monthly_usd: float | None = None
    action: str = "block"

    @property
    def empty(self) -> bool:
        return self.daily_usd is None and self.monthly_usd is None


@dataclass(frozen=True, slots=True)
class Rules:
    """The effective rules of one application (its own, else its department's, else `defaults`)."""

    allowed_tiers: frozenset[str] | None = None
    allowed_models: frozenset[str] | None = None
    max_cost_per_request_usd: float | None = None
    max_cost_action: str = "block"
    rpm: int | None = None
    tpm: int | None = None
    latency_class: str = "standard"
    pii: str = "off"
    cache: bool = True


@dataclass(frozen=True, slots=True)
class Department:
    name: str
    budget: Budget = field(default_factory=Budget)
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class Application:
    name: str
    department: str
    rules: Rules
    budget: Budget = field(default_factory=Budget)


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A client key declared in the policy; only its SHA-256 hex digest is stored."""

    key_id: str
    app: str


@dataclass(frozen=True, slots=True)
class PiiPattern:
    """An extra PII pattern from the policy: `name` becomes the kind and the `[NAME]` placeholder."""

    name: str
    regex: str


@dataclass(frozen=True, slots=True)
class Policy:
    """One validated policy. `require_app`: unknown or missing `x-fastroute-app` is refused (403)."""

    source: str = "built-in permissive policy"
    digest: str = ""
    text: str = ""
    require_keys: bool = False
    require_app: bool = False
    defaults: Rules = field(default_factory=Rules)
    departments: Mapping[str, Department] = field(default_factory=dict)
    applications: Mapping[str, Application] = field(default_factory=dict)
    keys: Mapping[str, VirtualKey] = field(default_factory=dict)  # sha256 hex -> key
    pii_patterns: tuple[PiiPattern, ...] = ()
    admin_token_sha256: str | None = None
    scanner: Any = None  # fastroute.governance.pii.PiiScanner built for `pii_patterns`, set by the loader
    compliance: Any = None  # fastroute.compliance.Compliance: content rules, residency, declared AI use

    @property
    def keys_enabled(self) -> bool:
        return self.require_keys or bool(self.keys)

    def application(self, name: str) -> Application | None:
        """The declared application, or (when apps are not required) an ad-hoc one with default rules."""
        app = self.applications.get(name)
        if app is not None:
            return app
        if self.require_app:
            return None
        return Application(name=name, department=DEFAULT_DEPARTMENT, rules=self.defaults)

    def department(self, name: str) -> Department:
        return self.departments.get(name) or Department(name=name)


def budget_key(scope: str, name: str, period: str, now: datetime) -> str:
    """The state-store key of one budget counter: `period` is `day` or `month` (UTC)."""
    day = now.date().isoformat()  # "YYYY-MM-DD"; ~10x cheaper than strftime on the request path
    stamp = day if period == "day" else day[:7]
    return f"budget:{scope}:{name}:{period}:{stamp}"


PERIOD_TTL_S = {"day": 3 * 86400, "month": 40 * 86400}
