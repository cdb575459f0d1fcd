"""`UpstreamBoard`: per-deployment call outcomes seen by this process, merged with breaker state.

Pure: no I/O. The breaker state comes from reliability through a `DeploymentHealth` probe when wired.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastroute.catalogue import ModelEntry
from fastroute.observability.sources import DeploymentHealth

RECENT_S = 300.0


@dataclass(slots=True)
class _Counts:
    ok: int = 0
    errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None


class UpstreamBoard:
    """Counts successes and failures per deployment, overall and over the last five minutes."""

    def __init__(self, models: Iterable[ModelEntry], *, recent_s: float = RECENT_S, keep: int = 20_000) -> None:
        self._models = {m.name: m for m in models}
        self._counts: dict[str, _Counts] = {name: _Counts() for name in self._models}
        self._recent: deque[tuple[float, str, bool]] = deque(maxlen=keep)
        self._recent_s = recent_s

    def record(self, deployment: str, ok: bool, reason: str | None = None, now: float | None = None) -> None:
        at = time.time() if now is None else now
        counts = self._counts.get(deployment)
        if counts is None:
            return  # not a catalogue deployment: nothing to show it under
        if ok:
            counts.ok += 1
        else:
            counts.errors += 1
            counts.last_error = reason
            counts.last_error_at = at
        self._recent.append((at, deployment, ok))

    def snapshot(self, breakers: Sequence[DeploymentHealth] = (), now: float | None = None) -> list[dict[str, Any]]:
        """One row per catalogue deployment: totals, the last five minutes, breaker state and a verdict."""
        at = time.time() if now is None else now
        recent: dict[str, list[int]] = {}
        for ts, name, ok in self._recent:
            if ts < at - self._recent_s:
                continue
            row = recent.setdefault(name, [0, 0])
            row[0 if ok else 1] += 1
        states = {b.deployment: b.state for b in breakers}
        rows = []
        for name, model in self._models.items():
            c = self._counts[name]
            r_ok, r_err = recent.get(name, (0, 0))
            breaker = states.get(name)
            rows.append({
                "deployment": name,
                "provider": model.provider,
                "tier": model.tier,
                "breaker": breaker,
                "status": _verdict(breaker, r_ok, r_err),
                "calls": c.ok + c.errors,
                "errors": c.errors,
                "recent_calls": r_ok + r_err,
                "recent_errors": r_err,
                "recent_error_rate_pct": round(100.0 * r_err / (r_ok + r_err), 1) if r_ok + r_err else 0.0,
                "last_error": c.last_error,
                "last_error_at": round(c.last_error_at, 3) if c.last_error_at is not None else None,
            })
        return rows


def _verdict(breaker: str | None, ok: int, errors: int) -> str:
    if breaker == "open":
        return "open"
    if breaker in ("half_open", "half-open"):
        return "probing"
    if ok + errors == 0:
        return "idle"
    if errors == 0:
        return "healthy"
    return "failing" if errors >= ok else "degraded"
