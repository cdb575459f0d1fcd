"""What visibility reads from other subsystems: upstream health (breakers) and budgets (governance).

Pure: small protocols and data. Each subsystem adapts its own objects to these in the composition root;
every source is optional, and a failing source degrades the figures it feeds, never a request.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("fastroute.observability")
BREAKER_STATES: dict[str, int] = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}


@dataclass(frozen=True, slots=True)
class DeploymentHealth:
    """One deployment's breaker as reliability sees it."""

    deployment: str
    state: str = "closed"  # closed | half_open | open
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget as governance enforces it: `scope` is `department` or `app`, `period` `day` or `month`."""

    scope: str
    name: str
    period: str
    limit_usd: float
    spent_usd: float

    @property
    def remaining_usd(self) -> float:
        return max(0.0, self.limit_usd - self.spent_usd)


HealthProbe = Callable[[], "Sequence[DeploymentHealth] | Awaitable[Sequence[DeploymentHealth]]"]
BudgetProbe = Callable[[], "Sequence[BudgetStatus] | Awaitable[Sequence[BudgetStatus]]"]


async def call_probe(probe: Callable[[], Any] | None) -> list[Any]:
    """Runs a sync or async probe; `None` or a failing probe gives an empty list."""
    if probe is None:
        return []
    try:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        return list(result)
    except Exception:
        log.exception("observability: probe %r failed", probe)
        return []


class SupportsBreakerSnapshot(Protocol):
    def snapshot(self) -> Mapping[str, str]: ...


def breaker_probe(board: SupportsBreakerSnapshot) -> HealthProbe:
    """Adapts reliability's `BreakerBoard` (its I/O-free `snapshot()`: deployment -> state) to a probe."""

    def probe() -> list[DeploymentHealth]:
        return [DeploymentHealth(name, state) for name, state in sorted(board.snapshot().items())]

    return probe
