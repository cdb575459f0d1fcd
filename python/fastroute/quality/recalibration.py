"""Auto-recalibration: per application, which tiers are demoted because their measured quality is too low.

Pure: no I/O, no clock of its own (callers pass `now`). A tier is demoted for an application when the
Wilson upper bound of its recent agreement (or positive-feedback) rate falls below the target, and restored
when the lower bound of fresh shadow evidence rises above it: a confident move each way, with hysteresis,
so one unlucky batch never flips routing. Demotion is one tier at a time (budget -> mid -> frontier) and
the frontier is never demoted: it is the reference.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastroute.catalogue import TIERS
from fastroute.quality.stats import OutcomeWindow, RateEstimate

SIGNALS = ("shadow", "feedback")
TOP_TIER = TIERS[-1]


@dataclass(frozen=True, slots=True)
class RecalibrationEvent:
    """One move of an application's routing: `action` is `raise` (tier demoted) or `restore`."""

    ts: float
    app: str
    tier: str
    action: str
    signal: str
    n: int
    rate: float
    ci_low: float
    ci_high: float
    target: float

    def row(self) -> tuple[float, str, str, str, str, int, float, float, float, float]:
        """The values of one row of the store's event table, in its column order."""
        return (
            self.ts,
            self.app,
            self.tier,
            self.action,
            self.signal,
            self.n,
            self.rate,
            self.ci_low,
            self.ci_high,
            self.target,
        )

    def describe(self) -> str:
        verb = "demoted" if self.action == "raise" else "restored"
        return (
            f"quality: app {self.app!r} tier {self.tier} {verb}: {self.signal} rate {self.rate:.2f} "
            f"(CI {self.ci_low:.2f}-{self.ci_high:.2f}, n={self.n}) vs target {self.target:.2f}"
        )


class Recalibrator:
    """Tracks recent outcomes per (app, tier, signal) and the tiers demoted per app."""

    def __init__(
        self,
        *,
        target: float,
        min_samples: int,
        window: int,
        z: float = 1.96,
        enabled: bool = True,
        max_keys: int = 10_000,
        app_targets: Mapping[str, float] | None = None,
    ) -> None:
        self.target = target
        self.app_targets = dict(app_targets or {})
        self.min_samples = min_samples
        self.window = window
        self.z = z
        self.enabled = enabled
        self.max_keys = max_keys
        self._windows: dict[tuple[str, str, str], OutcomeWindow] = {}
        self._demoted: dict[str, set[str]] = {}
        self._since: dict[tuple[str, str], float] = {}

    def demoted(self, app: str) -> frozenset[str]:
        return frozenset(self._demoted.get(app, ()))

    def demoted_since(self, app: str, tier: str) -> float | None:
        return self._since.get((app, tier))

    def route(self, app: str, tier: str) -> str:
        """The tier `app`'s traffic for `tier` should go to: the first tier at or above it not demoted."""
        demoted = self._demoted.get(app)
        if not demoted or tier not in demoted:
            return tier
        for candidate in TIERS[TIERS.index(tier) :]:
            if candidate not in demoted:
                return candidate
        return TOP_TIER

    def estimate(self, app: str, tier: str, signal: str) -> RateEstimate:
        window = self._windows.get((app, tier, signal))
        return window.estimate(self.z) if window is not None else RateEstimate.of(0, 0, self.z)

    def observe(
        self, app: str, tier: str, passed: bool, signal: str = "shadow", now: float | None = None
    ) -> RecalibrationEvent | None:
        """Adds one outcome; returns the event when it moves the application's routing."""
        if tier not in TIERS or signal not in SIGNALS:
            return None
        key = (app, tier, signal)
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self.max_keys:
                return None  # unbounded tenant names must not grow memory without bound
            window = self._windows[key] = OutcomeWindow(self.window)
        window.add(passed)
        if not self.enabled or tier == TOP_TIER or len(window) < self.min_samples:
            return None
        est = window.estimate(self.z)
        target = self.target_for(app)
        demoted = tier in self._demoted.get(app, ())
        if not demoted and est.high < target:
            return self._move(app, tier, "raise", signal, est, now)
        # Only shadow probes measure a demoted tier's own answers; feedback there is about the tier served.
        if demoted and signal == "shadow" and est.low > target:
            return self._move(app, tier, "restore", signal, est, now)
        return None

    def target_for(self, app: str) -> float:
        """The rate `app`'s tiers must deliver: its own floor when one is set, else the default."""
        return self.app_targets.get(app, self.target)

    def apply(self, event: RecalibrationEvent) -> None:
        """Applies a move: this process's own, or one replayed from the store (a restart, another worker).

        The (app, tier) windows start afresh either way: they described the routing before the move, and
        a worker keeping them after another worker's move could flip routing straight back.
        """
        for s in SIGNALS:
            window = self._windows.get((event.app, event.tier, s))
            if window is not None:
                window.clear()
        if event.action == "raise":
            self._demoted.setdefault(event.app, set()).add(event.tier)
            self._since[(event.app, event.tier)] = event.ts
        else:
            self._demoted.get(event.app, set()).discard(event.tier)
            self._since.pop((event.app, event.tier), None)
            if not self._demoted.get(event.app):
                self._demoted.pop(event.app, None)

    def reset(self, app: str) -> list[str]:
        """Restores every demoted tier of `app` (an operator's override); returns the tiers restored."""
        tiers = sorted(self._demoted.pop(app, set()), key=TIERS.index)
        for tier in tiers:
            self._since.pop((app, tier), None)
        for key in [k for k in self._windows if k[0] == app]:
            self._windows[key].clear()
        return tiers

    def _move(
        self, app: str, tier: str, action: str, signal: str, est: RateEstimate, now: float | None
    ) -> RecalibrationEvent:
        event = RecalibrationEvent(
            ts=time.time() if now is None else now,
            app=app,
            tier=tier,
            action=action,
            signal=signal,
            n=est.n,
            rate=est.rate or 0.0,
            ci_low=est.low,
            ci_high=est.high,
            target=self.target_for(app),
        )
        self.apply(event)
        return event

    def snapshot(self) -> dict[str, Any]:
        """Demoted tiers per app and the live window estimates (for `/admin/quality`)."""
        windows = [
            {"app": app, "tier": tier, "signal": signal, **w.estimate(self.z).as_dict()}
            for (app, tier, signal), w in sorted(self._windows.items())
            if len(w)
        ]
        demoted = {app: sorted(tiers, key=TIERS.index) for app, tiers in sorted(self._demoted.items()) if tiers}
        return {
            "target": self.target,
            "app_targets": dict(sorted(self.app_targets.items())),
            "min_samples": self.min_samples,
            "demoted": demoted,
            "windows": windows,
        }
