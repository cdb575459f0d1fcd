"""Prometheus metrics for the gateway: one `CollectorRegistry` per app, label children bound once.

Must not import aiohttp. Label values are bounded: tiers and catalogue models are closed sets, apps and
departments are capped (`max_label_values`, the rest fold into `other`), and nothing per-request (ids,
prompt text) ever becomes a label.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from fastroute.catalogue import TIERS
from fastroute.observability.outcome import (
    NONE,
    decision_kind,
    failed_deployments,
    is_cache_hit,
    latency_s,
    served_model,
    tier_of,
    token_counts,
)
from fastroute.observability.sources import BREAKER_STATES, BudgetStatus, DeploymentHealth
from fastroute.pipeline import RequestContext

OTHER = "other"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CACHE_RESULTS = ("off", "bypass", "miss", "hit-exact", "hit-semantic", "guard-reject")

# Routing (analysis + decision) is tens of microseconds; gateway overhead well under a millisecond.
ROUTE_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.1)
OVERHEAD_BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.5)
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class LabelFolder:
    """Keeps at most `limit` distinct values of one label; later new values become `other`."""

    def __init__(self, limit: int, allowed: Iterable[str] | None = None) -> None:
        self._limit = limit
        self._closed = allowed is not None
        self._seen: set[str] = set(allowed or ())

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if self._closed or len(self._seen) >= self._limit:
            return OTHER
        value = value[:64]
        self._seen.add(value)
        return value


class _ProbeCollector(Collector):
    """Breaker state and budget remaining, as last refreshed from their sources before a scrape."""

    def __init__(self) -> None:
        self.health: Sequence[DeploymentHealth] = ()
        self.budgets: Sequence[BudgetStatus] = ()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        breaker = GaugeMetricFamily(
            "fastroute_breaker_state", "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open.",
            labels=["deployment"],
        )
        for h in self.health:
            breaker.add_metric([h.deployment], float(BREAKER_STATES.get(h.state, 0)))
        remaining = GaugeMetricFamily(
            "fastroute_budget_remaining_usd", "Budget left in the current period (USD).",
            labels=["scope", "name", "period"],
        )
        limit = GaugeMetricFamily(
            "fastroute_budget_limit_usd", "Budget for the current period (USD).", labels=["scope", "name", "period"]
        )
        for b in self.budgets:
            remaining.add_metric([b.scope, b.name, b.period], b.remaining_usd)
            limit.add_metric([b.scope, b.name, b.period], b.limit_usd)
        return [breaker, remaining, limit]


class _Series:
    """The label children one (app, department, tier, model, status) combination touches, bound once."""

    __slots__ = ("completion", "cost", "prompt", "requests")

    def __init__(self, m: GatewayMetrics, app: str, dept: str, tier: str, model: str, status: str) -> None:
        self.requests = m.requests.labels(app, dept, tier, model, status)
        self.prompt = m.tokens.labels(app, dept, tier, model, "prompt")
        self.completion = m.tokens.labels(app, dept, tier, model, "completion")
        self.cost = m.cost.labels(app, dept, tier, model)


class GatewayMetrics:
    """Every fastroute metric, in its own registry (never prometheus_client's global default one)."""

    def __init__(self, models: Iterable[str], *, max_label_values: int = 100) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        tenant = ["app", "department"]
        self.requests = Counter(
            "fastroute_requests", "Chat completion requests by outcome.", [*tenant, "tier", "model", "status"],
            registry=r,
        )
        self.tokens = Counter(
            "fastroute_tokens", "Tokens billed (cache hits: tokens of the cached answer).",
            [*tenant, "tier", "model", "kind"], registry=r,
        )
        self.cost = Counter("fastroute_cost_usd", "Spend in USD.", [*tenant, "tier", "model"], registry=r)
        self.counterfactual = Counter(
            "fastroute_counterfactual_cost_usd",
            "What the same tokens would have cost on the reference frontier model (USD).", tenant, registry=r,
        )
        self.cache = Counter("fastroute_cache_lookups", "Response cache outcomes.", ["result"], registry=r)
        self.cache_saved = Counter(
            "fastroute_cache_saved_usd", "What cache hits would have cost on the routed model (USD).", tenant,
            registry=r,
        )
        self.route = Histogram(
            "fastroute_route_decision_seconds", "Prompt analysis + routing decision time.", buckets=ROUTE_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "fastroute_overhead_seconds", "Time spent in fastroute itself (wall time minus upstream time).",
            buckets=OVERHEAD_BUCKETS, registry=r,
        )
        self.latency = Histogram(
            "fastroute_request_seconds", "Whole request latency as the client sees it.", ["tier"],
            buckets=UPSTREAM_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "fastroute_upstream_ttft_seconds", "Upstream time to first token (streamed requests).", ["model"],
            buckets=UPSTREAM_BUCKETS, registry=r,
        )
        self.upstream = Histogram(
            "fastroute_upstream_seconds", "Time spent waiting on upstreams per request.", ["model"],
            buckets=UPSTREAM_BUCKETS, registry=r,
        )
        self.attempts = Counter(
            "fastroute_upstream_attempts", "Upstream calls per deployment by outcome.", ["deployment", "outcome"],
            registry=r,
        )
        self.fallbacks = Counter(
            "fastroute_fallbacks", "Requests that moved past a failed deployment, by reason.", ["reason"],
            registry=r,
        )
        self.decisions = Counter(
            "fastroute_policy_decisions", "Policy outcomes (e.g. pii:redact, budget:downgrade).", ["decision"],
            registry=r,
        )
        self.in_flight = Gauge("fastroute_requests_in_flight", "Requests inside the pipeline now.", registry=r)
        self.rejected = Counter(
            "fastroute_rejected_requests", "Requests refused before the pipeline (bad body, size, media type).",
            ["status"], registry=r,
        )
        self.probes = _ProbeCollector()
        r.register(self.probes)

        self._app = LabelFolder(max_label_values)
        self._dept = LabelFolder(max_label_values)
        self._model = LabelFolder(0, allowed=[*models, NONE])
        self._tier = LabelFolder(0, allowed=[*TIERS, NONE])
        self._cache_result = LabelFolder(0, allowed=CACHE_RESULTS)
        self._reason = LabelFolder(32)
        self._decision = LabelFolder(64)
        self._series: dict[tuple[str, str, str, str, int], _Series] = {}
        self._tenant: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._per_model: dict[str, tuple[Any, Any]] = {}
        self._per_tier: dict[str, Any] = {}
        self._attempt: dict[tuple[str, bool], Any] = {}

    def request_started(self) -> None:
        self.in_flight.inc()

    def observe(self, ctx: RequestContext, *, entered: bool = True) -> None:
        """Records one finished request (once, from `on_finish`); `entered`: `request_started` counted it."""
        if entered:
            self.in_flight.dec()
        app, dept = ctx.tenant.app, ctx.tenant.department
        tier, model = tier_of(ctx), served_model(ctx)
        key = (app, dept, tier, model, ctx.status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(
                self, self._app(app), self._dept(dept), self._tier(tier), self._model(model), str(ctx.status)
            )
        series.requests.inc()
        prompt, completion = token_counts(ctx)
        if prompt:
            series.prompt.inc(prompt)
        if completion:
            series.completion.inc(completion)
        if ctx.cost_usd:
            series.cost.inc(ctx.cost_usd)
        tenant = self._tenant.get((app, dept))
        if tenant is None:
            labels = (self._app(app), self._dept(dept))
            tenant = self._tenant[(app, dept)] = (
                self.counterfactual.labels(*labels), self.cache_saved.labels(*labels)
            )
        if ctx.counterfactual_usd:
            tenant[0].inc(ctx.counterfactual_usd)
        if ctx.cache_status != "off":
            self.cache.labels(self._cache_result(ctx.cache_status)).inc()
            if is_cache_hit(ctx) and ctx.decision is not None:
                tenant[1].inc(ctx.decision.model.cost(prompt, completion))
        if ctx.decision is not None:
            self.route.observe(ctx.route_s)
            self.overhead.observe(ctx.overhead_s())
            latency = self._per_tier.get(tier)
            if latency is None:
                latency = self._per_tier[tier] = self.latency.labels(self._tier(tier))
            latency.observe(latency_s(ctx))
        if ctx.served_by is not None:
            per_model = self._per_model.get(ctx.served_by)
            if per_model is None:
                label = self._model(ctx.served_by)
                per_model = self._per_model[ctx.served_by] = (self.upstream.labels(label), self.ttft.labels(label))
            per_model[0].observe(ctx.upstream_s)
            if ctx.ttft_s is not None:
                per_model[1].observe(ctx.ttft_s)
            self._attempt_child(ctx.served_by, True).inc()
        if ctx.attempts > 1 or ctx.served_by is None:
            for failed in failed_deployments(ctx):
                self._attempt_child(failed, False).inc()
            if ctx.served_by is not None and ctx.fallback_reason:
                self.fallbacks.labels(self._reason(ctx.fallback_reason)).inc()
        for d in ctx.decisions:
            self.decisions.labels(self._decision(decision_kind(d))).inc()

    def _attempt_child(self, deployment: str, ok: bool) -> Any:
        child = self._attempt.get((deployment, ok))
        if child is None:
            child = self._attempt[(deployment, ok)] = self.attempts.labels(
                self._model(deployment), "ok" if ok else "error"
            )
        return child

    def rejected_request(self, status: int) -> None:
        """A chat request refused before it reached the pipeline (its body could not be read or parsed)."""
        self.rejected.labels(str(status)).inc()

    def update_probes(self, health: Sequence[DeploymentHealth], budgets: Sequence[BudgetStatus]) -> None:
        self.probes.health = health
        self.probes.budgets = budgets

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
