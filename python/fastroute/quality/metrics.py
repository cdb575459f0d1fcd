"""Prometheus metrics of the quality loop: a collector visibility registers in its own registry.

Must not import aiohttp. Reads in-process state only (recent windows, demotions, shadow counters), so a
scrape never touches the database. Application labels are capped at `max_apps` (busiest first).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fastroute.quality.stage import QualityStage


class QualityCollector(Collector):
    """`registry.register(QualityCollector(stage))` adds the quality families to a registry."""

    def __init__(self, stage: QualityStage, *, max_apps: int = 100) -> None:
        self.stage = stage
        self.max_apps = max_apps

    def collect(self) -> Iterator[Metric]:
        snap = self.stage.recalibrator.snapshot()
        windows = snap["windows"]
        sizes: dict[str, int] = {}
        for w in windows:
            sizes[w["app"]] = sizes.get(w["app"], 0) + int(w["n"])
        apps = set(sorted(sizes, key=lambda a: -sizes[a])[: self.max_apps])
        labels = ["app", "tier", "signal"]
        rate = GaugeMetricFamily(
            "fastroute_quality_rate",
            "Agreement with the frontier (shadow) or positive-feedback rate over the recent window.",
            labels=labels,
        )
        low = GaugeMetricFamily(
            "fastroute_quality_rate_ci_low", "Wilson lower bound of fastroute_quality_rate.", labels=labels
        )
        high = GaugeMetricFamily(
            "fastroute_quality_rate_ci_high", "Wilson upper bound of fastroute_quality_rate.", labels=labels
        )
        samples = GaugeMetricFamily("fastroute_quality_samples", "Outcomes in the recent window.", labels=labels)
        for w in windows:
            if w["app"] not in apps or w["rate"] is None:
                continue
            key = [w["app"], w["tier"], w["signal"]]
            rate.add_metric(key, w["rate"])
            low.add_metric(key, w["ci_low"])
            high.add_metric(key, w["ci_high"])
            samples.add_metric(key, w["n"])
        yield from (rate, low, high, samples)
        yield GaugeMetricFamily(
            "fastroute_quality_target",
            "The rate each tier must deliver per application.",
            value=self.stage.settings.target,
        )
        demoted = GaugeMetricFamily(
            "fastroute_quality_demoted",
            "1 while recalibration routes an application's traffic above this tier.",
            labels=["app", "tier"],
        )
        for app, tiers in snap["demoted"].items():  # few by nature: every demoted app is shown
            for tier in tiers:
                demoted.add_metric([app, tier], 1)
        yield demoted
        moves = CounterMetricFamily(
            "fastroute_quality_moves", "Recalibration moves by this process.", labels=["action"]
        )
        for action, n in sorted(self.stage.moves.items()):
            moves.add_metric([action], n)
        yield moves
        shadow = self.stage.shadow
        if shadow is None:
            return
        jobs = CounterMetricFamily("fastroute_shadow_jobs", "Shadow evaluations by outcome.", labels=["outcome"])
        c = shadow.counters
        for name in ("offered", "started", "completed", "failed", "skipped_budget", "skipped_busy"):
            jobs.add_metric([name], getattr(c, name))
        yield jobs
        yield GaugeMetricFamily(
            "fastroute_shadow_spent_usd", "Shadow evaluation spend today (UTC).", value=shadow.budget.spent_usd
        )
        yield GaugeMetricFamily(
            "fastroute_shadow_budget_usd", "Shadow evaluation budget per UTC day.", value=shadow.budget.limit_usd
        )
