"""`GovernanceRuntime`: the live policy, the shared state store and their background tasks, started and
closed together (by `TenantStage`). Chooses Redis, the workers' shared table or in-process state.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastroute.catalogue import Catalogue
from fastroute.governance.holder import PolicyFileWatcher, PolicyHolder
from fastroute.governance.pii import PiiScanner
from fastroute.governance.policy import PERIOD_TTL_S, Budget, Policy, budget_key
from fastroute.governance.policy_load import parse_policy
from fastroute.governance.settings import GovernanceSettings
from fastroute.governance.shared_table import SharedTableStore
from fastroute.governance.state import Line, MemoryStore, StateStore

if TYPE_CHECKING:
    from fastroute.governance.redis_store import RedisPolicyBus

log = logging.getLogger("fastroute.governance")


class GovernanceRuntime:
    """Owns the policy holder, the file watcher, the Redis policy bus and the state store."""

    def __init__(
        self,
        catalogue: Catalogue,
        settings: GovernanceSettings,
        *,
        policy_path: Path | None = None,
        policy_text: str | None = None,
        redis_url: str | None = None,
        shared_table: Path | None = None,
    ) -> None:
        def compile_policy(text: str, source: str) -> Policy:
            return parse_policy(text, source=source, catalogue=catalogue, scanner_factory=PiiScanner)

        if policy_path is not None:
            text, source = policy_path.read_text(encoding="utf-8"), str(policy_path)
        else:
            text, source = policy_text or "", "built-in policy" if policy_text else "built-in permissive policy"
        # Raises PolicyError (a SettingsError) at start-up: an invalid policy never starts a gateway.
        self.holder = PolicyHolder(compile_policy(text, source), compile_policy)
        self.settings = settings
        self.redis_url = redis_url
        self.store: StateStore = MemoryStore()
        self.bus: RedisPolicyBus | None = None
        if shared_table is not None and not redis_url:  # FASTROUTE_WORKERS > 1 on one host
            self.store = SharedTableStore(shared_table)
        if redis_url:  # redis-py is imported only when it is used (about 8 MB and 0.2 s at start-up)
            from fastroute.governance.redis_store import RedisPolicyBus, RedisStore

            self.store = RedisStore(redis_url, prefix=settings.redis_prefix)
            self.bus = RedisPolicyBus(redis_url, prefix=settings.redis_prefix)
        self.watcher = PolicyFileWatcher(self.holder, policy_path, settings.policy_poll_s) if policy_path else None
        self._started = False

    @property
    def shared(self) -> bool:
        """True when state is shared across replicas (Redis)."""
        return self.redis_url is not None

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self.store.start()
        if self.bus is not None:
            await self.bus.start(self.holder.on_published)
            self.holder.bus = self.bus
        if self.watcher is not None:
            await self.watcher.start()

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        if self.watcher is not None:
            await self.watcher.close()
        if self.bus is not None:
            await self.bus.close()
            self.holder.bus = None
        await self.store.close()

    async def budget_levels(self) -> list[dict[str, Any]]:
        """Each declared budget now: scope, name, period, limit, settled spend, live reservations."""
        policy = self.holder.current
        now = datetime.now(UTC)
        entries: list[tuple[str, str, str, float, Line]] = []
        owners: list[tuple[str, str, Budget]] = [
            *(("applications", a.name, a.budget) for a in policy.applications.values()),
            *(("departments", d.name, d.budget) for d in policy.departments.values()),
        ]
        for scope, name, budget in owners:
            for period, limit in (("day", budget.daily_usd), ("month", budget.monthly_usd)):
                if limit is not None:
                    line = Line(budget_key(scope, name, period, now), limit, PERIOD_TTL_S[period], f"{scope}.{name}")
                    entries.append((scope, name, period, limit, line))
        if not entries:
            return []
        levels = await self.store.levels([e[4] for e in entries])
        return [
            {"scope": scope, "name": name, "period": period, "limit_usd": limit, "spent_usd": spent,
             "reserved_usd": reserved, "remaining_usd": max(0.0, limit - spent - reserved)}
            for (scope, name, period, limit, _), (spent, reserved) in zip(entries, levels, strict=True)
        ]
