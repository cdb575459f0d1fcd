"""What the composition root calls: the governance stages for `Settings`, and its admin routes.

`build_governance` returns two groups because the response cache sits between them: tenants, PII,
rate limits and the cost ceiling run before the cache; budgets after it, so cache hits reserve nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from aiohttp import web

from fastroute.catalogue import Catalogue
from fastroute.config_file import load_config_file
from fastroute.env_values import SettingsError
from fastroute.governance import admin
from fastroute.governance.limits import BudgetStage, CostCeilingStage, RateLimitStage
from fastroute.governance.runtime import GovernanceRuntime
from fastroute.governance.screening import PiiStage
from fastroute.governance.tenants import TenantStage
from fastroute.ledger import Ledger, LedgerStage, SqliteLedger
from fastroute.observability.sources import BudgetStatus
from fastroute.pipeline import Stage
from fastroute.settings import Settings


def shared_table_path(settings: Settings) -> Path:
    """Where the worker processes of one host share budgets and rate limits without Redis (see
    `SharedTableStore`; written anew by the supervisor at each start)."""
    return settings.data_dir / "governance-state.table"


@dataclass(frozen=True)
class Governance:
    runtime: GovernanceRuntime
    before_cache: list[Stage]
    after_cache: list[Stage]


def build_governance(
    settings: Settings, catalogue: Catalogue, *, policy_text: str | None = None, ledger: Ledger | None = None
) -> Governance:
    """Stages from settings. The policy comes from `FASTROUTE_POLICY`, else the config file's `policy`
    section (a path relative to the config file, or the policy inline), else `policy_text` (e.g. the demo),
    else a permissive built-in one. `ledger` refills in-process budgets at start-up."""
    policy_path, inline = settings.policy_path, None
    if policy_path is None and settings.config_path is not None:
        section = load_config_file(settings.config_path).get("policy")
        if isinstance(section, str):
            policy_path = (settings.config_path.parent / section).resolve()
            if not policy_path.is_file():
                raise SettingsError(f"{settings.config_path}: policy: {section!r} is not a file")
        elif isinstance(section, dict):
            inline = yaml.safe_dump(section, sort_keys=False)
        elif section is not None:
            raise SettingsError(f"{settings.config_path}: policy: must be a file path or a mapping")
    runtime = GovernanceRuntime(
        catalogue,
        settings.governance,
        policy_path=policy_path,
        policy_text=inline if inline is not None else policy_text,
        redis_url=settings.redis_url,
        shared_table=shared_table_path(settings) if settings.server.workers > 1 else None,
    )
    # A reservation must outlive the longest request it covers, or a slow stream's budget hold would lapse.
    reservation_ttl_s = max(settings.governance.reservation_ttl_s, settings.upstream.total_timeout_s + 30)
    before: list[Stage] = [
        TenantStage(runtime, catalogue),
        PiiStage(),
        RateLimitStage(runtime.store),
        CostCeilingStage(catalogue),
    ]
    after: list[Stage] = [BudgetStage(runtime.store, catalogue, reservation_ttl_s, ledger)]
    return Governance(runtime, before, after)


def install_governance_routes(app: web.Application, settings: Settings, stages: Sequence[Stage]) -> None:
    """`/admin/policy`, `/admin/budgets`, `/admin/spend`, `/admin/audit` when governance stages are present."""
    tenants = next((s for s in stages if isinstance(s, TenantStage)), None)
    if tenants is None:
        return
    ledger_stage = next((s for s in stages if isinstance(s, LedgerStage)), None)
    ledger = ledger_stage.ledger if ledger_stage is not None and isinstance(ledger_stage.ledger, SqliteLedger) else None
    admin.install(app, tenants.runtime, ledger, settings.admin_token)


def budget_probe(runtime: GovernanceRuntime) -> Callable[[], Awaitable[list[BudgetStatus]]]:
    """Budget status for visibility's metrics (`ObservabilityStage.attach(budgets=...)`)."""

    async def probe() -> list[BudgetStatus]:
        rows = await runtime.budget_levels()
        return [
            BudgetStatus(
                scope="app" if r["scope"] == "applications" else "department", name=r["name"], period=r["period"],
                limit_usd=r["limit_usd"], spent_usd=r["spent_usd"] + r["reserved_usd"],
            )
            for r in rows
        ]

    return probe
