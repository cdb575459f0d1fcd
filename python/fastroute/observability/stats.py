"""`StatsBook`: the savings and health report behind `GET /admin/stats` and the dashboard.

Must not import aiohttp. Spend, savings and tier mix come from the spend ledger (the source of truth,
shared with governance); latency, upstream health and recent policy decisions from this process.
Every figure is rounded here, once, so the dashboard shows exactly the numbers of the JSON.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from fastroute.catalogue import TIERS, Catalogue
from fastroute.ledger import Ledger
from fastroute.observability.health import UpstreamBoard
from fastroute.observability.latency import LatencySample, LatencyWindow
from fastroute.observability.outcome import failed_deployments, latency_s
from fastroute.observability.sources import BudgetProbe, BudgetStatus, HealthProbe, call_probe
from fastroute.pipeline import RequestContext

# period -> (length in seconds or None for everything, series step: seconds or a ledger bucket name)
PERIODS: dict[str, tuple[float | None, float | str]] = {
    "15m": (900.0, 15.0),
    "1h": (3600.0, 60.0),
    "24h": (86400.0, "hour"),
    "7d": (7 * 86400.0, "hour"),
    "30d": (30 * 86400.0, "day"),
    "all": (None, "day"),
}
DEFAULT_PERIOD = "24h"
FINE_GRAIN = ("department", "app", "tier", "model", "cache_status")
MIX = (*TIERS, "cache")
SERIES_RECORD_LIMIT = 50_000
RECENT_DECISIONS = 50
REPORT_TTL_S = 1.0
# decisions that record where a request went rather than a rule acting on it: not listed as "recent"
INFORMATIONAL = ("region:",)


def usd(value: float) -> float:
    return round(value, 6)


def pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _is_hit(cache_status: str | None) -> bool:
    return bool(cache_status) and str(cache_status).startswith("hit")


class StatsBook:
    """Builds `/admin/stats` reports; `record` is called once per finished request."""

    def __init__(
        self,
        catalogue: Catalogue,
        ledger: Ledger,
        *,
        latency_window: int = 4096,
        health: HealthProbe | None = None,
        budgets: BudgetProbe | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.ledger = ledger
        self.health = health
        self.budgets = budgets
        self.latency = LatencyWindow(latency_window)
        self.upstreams = UpstreamBoard(catalogue.models.values())
        self._decisions: deque[dict[str, Any]] = deque(maxlen=RECENT_DECISIONS)
        self.started_at = time.time()
        self._reports: dict[tuple[str, str | None, str | None], tuple[float, asyncio.Future[dict[str, Any]]]] = {}

    def record(self, ctx: RequestContext, now: float | None = None) -> None:
        """Latency sample, upstream outcomes and policy decisions of one finished request."""
        at = time.time() if now is None else now
        tenant = ctx.tenant
        if ctx.status < 400 and ctx.decision is not None:
            self.latency.add(LatencySample(
                tenant.app, tenant.department, latency_s(ctx), ctx.overhead_s(), ctx.route_s, ctx.ttft_s
            ))
        if ctx.served_by is not None:
            self.upstreams.record(ctx.served_by, True, now=at)
        if ctx.attempts > 1 or (ctx.served_by is None and ctx.attempts):
            for name in failed_deployments(ctx):
                self.upstreams.record(name, False, ctx.fallback_reason or "upstream_error", now=at)
        shown = [d for d in ctx.decisions if not d.startswith(INFORMATIONAL)]
        if shown:
            self._decisions.append({
                "ts": round(at, 3),
                "request_id": ctx.request_id,
                "app": tenant.app,
                "department": tenant.department,
                "status": ctx.status,
                "decisions": shown,
            })

    async def snapshot(
        self,
        period: str = DEFAULT_PERIOD,
        *,
        app: str | None = None,
        department: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """The whole report for one period (see `PERIODS`), optionally for one app and/or department.

        Reports for the current time are shared for `REPORT_TTL_S` (and while one is being built), so
        several dashboards polling at once cost the ledger one query set, not one each.
        """
        if period not in PERIODS:
            raise ValueError(f"unknown period {period!r} (use {', '.join(PERIODS)})")
        if now is not None:
            return await self._build(period, app, department, now)
        key = (period, app, department)
        cached = self._reports.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return await asyncio.shield(cached[1])
        clock = time.monotonic()
        for stale in [k for k, (expires, _) in self._reports.items() if expires <= clock]:
            del self._reports[stale]
        task = asyncio.ensure_future(self._build(period, app, department, time.time()))
        self._reports[key] = (time.monotonic() + REPORT_TTL_S, task)
        try:
            return await asyncio.shield(task)
        except BaseException:
            self._reports.pop(key, None)
            raise

    async def _build(self, period: str, app: str | None, department: str | None, at: float) -> dict[str, Any]:
        length, step = PERIODS[period]
        since = at - length if length is not None else None
        scope = _Scope(app, department, since)
        # one ledger query at the finest grain this report needs; every breakdown is summed from it
        rows = await self._spend(scope, FINE_GRAIN)
        by_dept = _group(rows, ("department",))
        by_app = _group(rows, ("app", "department"))
        by_mix = _group(rows, ("tier", "model", "cache_status"))
        budgets: list[BudgetStatus] = await call_probe(self.budgets)
        breakers = await call_probe(self.health)
        totals, tier_mix, by_model = self._mix(by_dept, by_mix)
        return {
            "generated_at": _iso(at),
            "period": period,
            "periods": list(PERIODS),
            "since": _iso(since) if since is not None else None,
            "filter": {"app": app, "department": department},
            "source": "ledger",
            "totals": totals,
            "tier_mix": tier_mix,
            "by_model": by_model,
            "by_department": [self._dept_row(r, budgets) for r in by_dept],
            "by_app": [self._app_row(r, budgets) for r in by_app],
            "series": await self._series(scope, step, since, at),
            "latency": self.latency.summary(app, department),
            "upstreams": self.upstreams.snapshot(breakers, now=at),
            "budgets": [_budget_row(b) for b in budgets],
            "decisions": {
                "blocked": sum(int(r["blocked"] or 0) for r in by_dept),
                "downgraded": sum(int(r["downgraded"] or 0) for r in by_dept),
                "redacted": sum(int(r["redacted"] or 0) for r in by_dept),
                "recent": [
                    d for d in reversed(self._decisions)
                    if (app is None or d["app"] == app) and (department is None or d["department"] == department)
                ][:20],
            },
        }

    async def _spend(self, scope: _Scope, group_by: tuple[str, ...]) -> list[dict[str, Any]]:
        return await self.ledger.spend(
            app=scope.app, department=scope.department, since=scope.since, group_by=group_by
        )

    def _mix(
        self, by_dept: Sequence[dict[str, Any]], by_mix: Sequence[dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        counts = dict.fromkeys(MIX, 0)
        cache_hits = lookups = 0
        cache_saved = 0.0
        models: dict[str, dict[str, Any]] = {}
        for r in by_mix:
            served = int(r["served"] or 0)
            status = r["cache_status"]
            if status in ("miss",) or _is_hit(status):
                lookups += int(r["requests"])
            if _is_hit(status):
                cache_hits += served
                counts["cache"] += served
                entry = self.catalogue.models.get(r["model"] or "")
                if entry is not None:
                    cache_saved += entry.cost(int(r["prompt_tokens"]), int(r["completion_tokens"]))
            elif r["tier"] in counts:
                counts[r["tier"]] += served
            if r["model"] and served:
                m = models.setdefault(r["model"], {"model": r["model"], "tier": r["tier"], "requests": 0, "spend": 0.0})
                m["requests"] += served
                m["spend"] += float(r["cost_usd"] or 0.0)
        served_total = sum(counts.values())
        totals = _spend_row(_sum_rows(by_dept), ())
        totals.update({
            "cache_hits": cache_hits,
            "cache_lookups": lookups,
            "cache_hit_rate_pct": pct(cache_hits, lookups),
            "cache_saved_usd": usd(cache_saved),
            "routing_saved_usd": usd(totals["savings_usd"] - cache_saved),
        })
        tier_mix = {k: {"requests": v, "share_pct": pct(v, served_total)} for k, v in counts.items()}
        by_model = sorted(
            ({"model": m["model"], "tier": m["tier"], "requests": m["requests"], "spend_usd": usd(m["spend"]),
              "share_pct": pct(m["requests"], served_total)} for m in models.values()),
            key=lambda m: (-m["requests"], m["model"]),
        )
        return totals, tier_mix, by_model

    def _dept_row(self, row: dict[str, Any], budgets: Sequence[BudgetStatus]) -> dict[str, Any]:
        out = _spend_row(row, ("department",))
        out["budgets"] = [
            _budget_row(b) for b in budgets if b.scope == "department" and b.name == row["department"]
        ]
        return out

    def _app_row(self, row: dict[str, Any], budgets: Sequence[BudgetStatus]) -> dict[str, Any]:
        out = _spend_row(row, ("app", "department"))
        out["budgets"] = [_budget_row(b) for b in budgets if b.scope == "app" and b.name == row["app"]]
        return out

    async def _series(
        self, scope: _Scope, step: float | str, since: float | None, at: float
    ) -> dict[str, Any]:
        """Served requests per tier (and cache), errors, spend and counterfactual over time."""
        buckets: dict[float, dict[str, Any]] = {}
        if isinstance(step, str):
            rows = await self._spend(scope, (step, "tier", "cache_status"))
            width = 3600.0 if step == "hour" else 86400.0
            for r in rows:
                _add(buckets, _bucket_start(r[step]), r["tier"], r["cache_status"], int(r["served"] or 0),
                     int(r["errors"] or 0), float(r["cost_usd"] or 0), float(r["counterfactual_usd"] or 0))
        else:
            width = step
            records = await self.ledger.records(
                app=scope.app, department=scope.department, since=scope.since, limit=SERIES_RECORD_LIMIT
            )
            for rec in records:
                served = 1 if rec.model is not None and rec.status < 400 else 0
                _add(buckets, rec.ts // width * width, rec.tier, rec.cache_status, served,
                     int(rec.status >= 400), rec.cost_usd, rec.counterfactual_usd)
        first = (since if since is not None else min(buckets, default=at)) // width * width
        last = at // width * width
        points: list[dict[str, Any]] = []
        t = first
        while t <= last and len(points) < 2000:
            b = buckets.get(t) or _empty()
            points.append({
                "t": int(t), **{k: b[k] for k in MIX}, "errors": b["errors"],
                "spend_usd": usd(b["spend"]), "counterfactual_usd": usd(b["cf"]),
            })
            t += width
        return {"step_s": int(width), "points": points}


class _Scope(NamedTuple):
    app: str | None
    department: str | None
    since: float | None


def _empty() -> dict[str, Any]:
    return {**dict.fromkeys(MIX, 0), "errors": 0, "spend": 0.0, "cf": 0.0}


def _add(
    buckets: dict[float, dict[str, Any]], t: float, tier: str | None, cache_status: str | None,
    served: int, errors: int, spend: float, cf: float,
) -> None:
    b = buckets.get(t)
    if b is None:
        b = buckets[t] = _empty()
    key = "cache" if _is_hit(cache_status) else tier
    if key in MIX:
        b[key] += served
    b["errors"] += errors
    b["spend"] += spend
    b["cf"] += cf


def _bucket_start(label: str) -> float:
    """Ledger bucket labels (`2026-11-28T19:00:00Z`, `2026-11-28`) as unix seconds."""
    if "T" in label:
        return datetime.strptime(label, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return datetime.strptime(label, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()


SUMMED = (
    "requests", "served", "errors", "prompt_tokens", "completion_tokens", "cost_usd", "counterfactual_usd",
    "cache_hits", "blocked", "downgraded", "redacted",
)


def _sum_rows(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {k: sum(r[k] or 0 for r in rows) for k in SUMMED}


def _group(rows: Sequence[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Ledger spend rows re-grouped by `keys` (sums of every counted column), sorted by the keys."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = tuple(r[k] for k in keys)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {**dict(zip(keys, key, strict=True)), **dict.fromkeys(SUMMED, 0)}
        for k in SUMMED:
            g[k] += r[k] or 0
    return [groups[k] for k in sorted(groups, key=lambda t: tuple("" if v is None else str(v) for v in t))]


def _spend_row(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    spend = float(row["cost_usd"] or 0.0)
    cf = float(row["counterfactual_usd"] or 0.0)
    out: dict[str, Any] = {k: row[k] for k in keys}
    out.update({
        "requests": int(row["requests"] or 0),
        "served": int(row["served"] or 0),
        "errors": int(row["errors"] or 0),
        "prompt_tokens": int(row["prompt_tokens"] or 0),
        "completion_tokens": int(row["completion_tokens"] or 0),
        "spend_usd": usd(spend),
        "counterfactual_usd": usd(cf),
        "savings_usd": usd(cf - spend),
        "savings_pct": pct(cf - spend, cf),
    })
    return out


def _budget_row(b: BudgetStatus) -> dict[str, Any]:
    return {
        "scope": b.scope, "name": b.name, "period": b.period,
        "limit_usd": usd(b.limit_usd), "spent_usd": usd(b.spent_usd), "remaining_usd": usd(b.remaining_usd),
        "used_pct": pct(b.spent_usd, b.limit_usd),
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
