"""The per-tier quality report behind `GET /admin/quality`, and the rows visibility turns into panels.

Must not import aiohttp. Rates carry Wilson intervals; figures are rounded here, once.
"""

from __future__ import annotations

import time
from typing import Any

from fastroute.quality.stage import QualityStage
from fastroute.quality.stats import RateEstimate

# period name -> seconds (None: everything kept)
PERIODS: dict[str, float | None] = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "all": None}
DEFAULT_PERIOD = "24h"


async def tier_quality(
    stage: QualityStage, *, period: str = DEFAULT_PERIOD, app: str | None = None
) -> list[dict[str, Any]]:
    """One row per (app, tier, model): requests, shadow agreement and feedback rates with Wilson intervals.

    This is the function visibility calls for its quality panels and gauges, e.g.
    `fastroute_quality_agreement{app,tier,model}` from `shadow.rate` and its `ci_low` / `ci_high`.
    """
    seconds = PERIODS[period]
    since = time.time() - seconds if seconds is not None else None
    z = stage.recalibrator.z
    rows = []
    for r in await stage.store.tier_quality(since=since, app=app):
        shadow = RateEstimate.of(float(r["shadow_agree"] or 0), int(r["shadow_n"]), z)
        feedback = RateEstimate.of(float(r["feedback_positive"] or 0), int(r["feedback_n"]), z)
        rows.append(
            {
                "app": r["app"],
                "tier": r["tier"],
                "model": r["model"],
                "requests": int(r["requests"]),
                "shadow": {**shadow.as_dict(), "mean_similarity": _round(r["shadow_score"])},
                "feedback": {**feedback.as_dict(), "mean_score": _round(r["feedback_mean"])},
            }
        )
    return rows


async def quality_report(
    stage: QualityStage, *, period: str = DEFAULT_PERIOD, app: str | None = None
) -> dict[str, Any]:
    """Everything `/admin/quality` shows: per-tier rates, recalibration state and events, shadow spend."""
    events = await stage.store.events(limit=50)
    if app is not None:
        events = [e for e in events if e["app"] == app]
    recal = stage.recalibrator.snapshot()
    return {
        "object": "quality_report",
        "period": period,
        "app": app,
        "target": stage.settings.target,
        "tiers": await tier_quality(stage, period=period, app=app),
        "recalibration": {
            "enabled": stage.settings.recalibrate,
            "app_targets": recal["app_targets"],
            "min_samples": recal["min_samples"],
            "demoted": recal["demoted"],
            "windows": recal["windows"],
            "events": [
                {k: _round(v) if isinstance(v, float) else v for k, v in e.items() if k != "id"} for e in events
            ],
        },
        "shadow": stage.shadow.snapshot() if stage.shadow is not None else {"rate": 0.0, "enabled": False},
    }


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
