"""Prometheus metrics for the gateway: one `CollectorRegistry` per app, plain-number storage per series.

Must not import aiohttp. The hot path only bumps numbers on objects bound once per label combination
(about a microsecond a request); metric families are built at scrape time by a custom collector, so
prometheus_client's per-call locking and bucket scans stay off the request path. Everything runs on the
event loop thread. Label values are bounded: tiers and catalogue models are closed sets, apps and
departments are capped (`max_label_values`, the rest fold into `other`), and nothing per-request (ids,
prompt text) ever becomes a label.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
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
from fastroute.observability.worker_share import WorkerShare, merge
from fastroute.pipeline import RequestContext

OTHER = "other"
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


class Hist:
    """One histogram series: per-bucket counts (non-cumulative; the last is +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # `le` buckets: value <= bound
        self.total += value

    def merge(self, other: Hist) -> None:
        for i, c in enumerate(other.counts):
            self.counts[i] += c
        self.total += other.total

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class _Series:
    """Counts of one (app, department, tier, model, status) combination; `labels` already folded."""

    __slots__ = ("completion", "cost", "labels", "prompt", "requests")

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        self.requests = 0
        self.prompt = 0
        self.completion = 0
        self.cost = 0.0


class _Tenant:
    __slots__ = ("cache_saved", "counterfactual", "labels")

    def __init__(self, labels: tuple[str, str]) -> None:
        self.labels = labels
        self.counterfactual = 0.0
        self.cache_saved = 0.0


class _Upstream:
    __slots__ = ("label", "latency", "ttft")

    def __init__(self, label: str) -> None:
        self.label = label
        self.latency = Hist(UPSTREAM_BUCKETS)
        self.ttft = Hist(UPSTREAM_BUCKETS)


def _counts(counts: dict[tuple[str, ...], float], key: tuple[str, ...], amount: float = 1.0) -> None:
    counts[key] = counts.get(key, 0.0) + amount


class GatewayMetrics(Collector):
    """Every fastroute metric, in its own registry (never prometheus_client's global default one)."""

    def __init__(self, models: Iterable[str], *, max_label_values: int = 100) -> None:
        self._app = LabelFolder(max_label_values)
        self._dept = LabelFolder(max_label_values)
        self._model = LabelFolder(0, allowed=[*models, NONE])
        self._tier = LabelFolder(0, allowed=[*TIERS, NONE])
        self._cache_result = LabelFolder(0, allowed=CACHE_RESULTS)
        self._reason = LabelFolder(32)
        self._decision = LabelFolder(64)
        self._series: dict[tuple[str, str, str, str, int], _Series] = {}
        self._tenants: dict[tuple[str, str], _Tenant] = {}
        self._upstreams: dict[str, _Upstream] = {}
        self._latency: dict[str, Hist] = {}
        self.route = Hist(ROUTE_BUCKETS)
        self.overhead = Hist(OVERHEAD_BUCKETS)
        self.cache: dict[tuple[str, ...], float] = {}
        self.attempts: dict[tuple[str, ...], float] = {}
        self.fallbacks: dict[tuple[str, ...], float] = {}
        self.decisions: dict[tuple[str, ...], float] = {}
        self.rejected: dict[tuple[str, ...], float] = {}
        self.in_flight = 0
        self.health: Sequence[DeploymentHealth] = ()
        self.budgets: Sequence[BudgetStatus] = ()
        # the response cache's own event counters (hits, misses, `verifier_<reason>` guard rejections...)
        self.cache_events: Callable[[], Mapping[str, float]] | None = None
        # the response cache's size (`SemanticCache.memory`: entries, table/index bytes, body-log bytes)
        self.cache_size: Callable[[], Mapping[str, int]] | None = None
        # With several worker processes: where workers publish and read each other's samples.
        self.share: WorkerShare | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # ---------------------------------------------------------------- hot path (event loop)

    def request_started(self) -> None:
        self.in_flight += 1

    def observe(self, ctx: RequestContext, *, entered: bool = True) -> None:
        """Records one finished request (once, from `on_finish`); `entered`: `request_started` counted it."""
        if entered:
            self.in_flight -= 1
        app, dept = ctx.tenant.app, ctx.tenant.department
        tier, model = tier_of(ctx), served_model(ctx)
        key = (app, dept, tier, model, ctx.status)
        series = self._series.get(key)
        if series is None:
            labels = (self._app(app), self._dept(dept), self._tier(tier), self._model(model), str(ctx.status))
            series = self._series[key] = _Series(labels)
        prompt, completion = token_counts(ctx)
        series.requests += 1
        series.prompt += prompt
        series.completion += completion
        series.cost += ctx.cost_usd
        tenant = self._tenants.get((app, dept))
        if tenant is None:
            tenant = self._tenants[(app, dept)] = _Tenant((self._app(app), self._dept(dept)))
        tenant.counterfactual += ctx.counterfactual_usd
        if ctx.cache_status != "off":
            _counts(self.cache, (self._cache_result(ctx.cache_status),))
            if is_cache_hit(ctx) and ctx.decision is not None:
                tenant.cache_saved += ctx.decision.model.cost(prompt, completion)
        if ctx.decision is not None:
            self.route.observe(ctx.route_s)
            self.overhead.observe(ctx.overhead_s())
            latency = self._latency.get(tier)
            if latency is None:
                latency = self._latency[tier] = Hist(UPSTREAM_BUCKETS)
            latency.observe(latency_s(ctx))
        served = ctx.served_by
        if served is not None:
            upstream = self._upstreams.get(served)
            if upstream is None:
                upstream = self._upstreams[served] = _Upstream(self._model(served))
            upstream.latency.observe(ctx.upstream_s)
            if ctx.ttft_s is not None:
                upstream.ttft.observe(ctx.ttft_s)
            _counts(self.attempts, (upstream.label, "ok"))
        if ctx.attempts > 1 or (served is None and ctx.attempts):
            for failed in failed_deployments(ctx):
                _counts(self.attempts, (self._model(failed), "error"))
            if served is not None and ctx.fallback_reason:
                _counts(self.fallbacks, (self._reason(ctx.fallback_reason),))
        for d in ctx.decisions:
            _counts(self.decisions, (self._decision(decision_kind(d)),))

    def rejected_request(self, status: int) -> None:
        """A chat request refused before it reached the pipeline (its body could not be read or parsed)."""
        _counts(self.rejected, (str(status),))

    def update_probes(self, health: Sequence[DeploymentHealth], budgets: Sequence[BudgetStatus]) -> None:
        self.health = health
        self.budgets = budgets

    # ---------------------------------------------------------------- scrape time

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """This worker's families, plus every other worker's samples when they are shared."""
        if self.share is None:
            yield from self._families()
        else:
            yield from merge(self._families(), self.share.others())

    def publish(self) -> None:
        """Writes this worker's samples for the other workers' scrapes (no-op without sharing)."""
        if self.share is not None:
            self.share.publish(self._families())

    def _families(self) -> Iterator[Metric]:
        tenant = ["app", "department"]
        requests = CounterMetricFamily(
            "fastroute_requests", "Chat completion requests by outcome.", labels=[*tenant, "tier", "model", "status"]
        )
        tokens = CounterMetricFamily(
            "fastroute_tokens", "Tokens billed (cache hits: tokens of the cached answer).",
            labels=[*tenant, "tier", "model", "kind"],
        )
        cost = CounterMetricFamily("fastroute_cost_usd", "Spend in USD.", labels=[*tenant, "tier", "model"])
        by_labels: dict[tuple[str, ...], list[float]] = {}
        for s in self._series.values():
            row = by_labels.setdefault(s.labels, [0, 0, 0, 0.0])
            row[0] += s.requests
            row[1] += s.prompt
            row[2] += s.completion
            row[3] += s.cost
        spend: dict[tuple[str, ...], float] = {}
        for labels, (n, prompt, completion, usd) in by_labels.items():
            requests.add_metric(list(labels), n)
            if prompt:
                tokens.add_metric([*labels[:4], "prompt"], prompt)
            if completion:
                tokens.add_metric([*labels[:4], "completion"], completion)
            spend[labels[:4]] = spend.get(labels[:4], 0.0) + usd
        for labels, usd in spend.items():
            cost.add_metric(list(labels), usd)
        yield from (requests, tokens, cost)

        counterfactual = CounterMetricFamily(
            "fastroute_counterfactual_cost_usd",
            "What the same tokens would have cost on the reference frontier model (USD).", labels=tenant,
        )
        cache_saved = CounterMetricFamily(
            "fastroute_cache_saved_usd", "What cache hits would have cost on the routed model (USD).", labels=tenant
        )
        per_tenant: dict[tuple[str, str], list[float]] = {}
        for t in self._tenants.values():
            row = per_tenant.setdefault(t.labels, [0.0, 0.0])
            row[0] += t.counterfactual
            row[1] += t.cache_saved
        for labels, (cf, saved) in per_tenant.items():
            counterfactual.add_metric(list(labels), cf)
            cache_saved.add_metric(list(labels), saved)
        yield from (counterfactual, cache_saved)

        for name, doc, labelnames, counts in (
            ("fastroute_cache_lookups", "Response cache outcomes.", ["result"], self.cache),
            ("fastroute_upstream_attempts", "Upstream calls per deployment by outcome.", ["deployment", "outcome"],
             self.attempts),
            ("fastroute_fallbacks", "Requests answered after a failed deployment, by reason.", ["reason"],
             self.fallbacks),
            ("fastroute_policy_decisions", "Policy outcomes (e.g. pii:redact, budget:downgrade).", ["decision"],
             self.decisions),
            ("fastroute_rejected_requests", "Chat requests refused before the pipeline (bad body, size, type).",
             ["status"], self.rejected),
        ):
            family = CounterMetricFamily(name, doc, labels=labelnames)
            for labels, value in counts.items():
                family.add_metric(list(labels), value)
            yield family

        yield _histogram("fastroute_route_decision_seconds", "Prompt analysis + routing decision time.", [],
                         {(): self.route})
        yield _histogram("fastroute_overhead_seconds",
                         "Time spent in fastroute itself (wall time minus upstream time).", [], {(): self.overhead})
        yield _histogram("fastroute_request_seconds", "Whole request latency as the client sees it.", ["tier"],
                         {(self._tier(t),): h for t, h in self._latency.items()})
        yield _histogram("fastroute_upstream_seconds", "Time spent waiting on upstreams per request.", ["model"],
                         {(u.label,): u.latency for u in self._upstreams.values()})
        yield _histogram("fastroute_upstream_ttft_seconds", "Upstream time to first token (streamed requests).",
                         ["model"], {(u.label,): u.ttft for u in self._upstreams.values() if sum(u.ttft.counts)})

        in_flight = GaugeMetricFamily("fastroute_requests_in_flight", "Requests inside the pipeline now.")
        in_flight.add_metric([], self.in_flight)
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
        yield from (in_flight, breaker, remaining, limit)
        if self.cache_events is not None:
            yield from _cache_event_families(self.cache_events())
        if self.cache_size is not None:
            yield from _cache_size_families(self.cache_size())


def _cache_event_families(events: Mapping[str, float]) -> Iterator[Metric]:
    every = CounterMetricFamily(
        "fastroute_cache_events", "Response cache events as the cache counts them.", labels=["event"]
    )
    guard = CounterMetricFamily(
        "fastroute_cache_guard_rejections",
        "Semantic candidates the verifier refused (a false hit avoided), by reason.", labels=["reason"],
    )
    for name, value in sorted(events.items())[:256]:
        every.add_metric([name[:64]], float(value))
        if name.startswith("verifier_"):
            guard.add_metric([name.removeprefix("verifier_")[:64]], float(value))
    yield from (every, guard)


def _cache_size_families(size: Mapping[str, int]) -> Iterator[Metric]:
    entries = GaugeMetricFamily("fastroute_cache_entries", "Entries held by the response cache.")
    entries.add_metric([], float(size.get("entries", 0)))
    held = GaugeMetricFamily(
        "fastroute_cache_bytes",
        "Bytes the response cache holds: 'memory' (entry table + vector indexes), 'log' (answer files).",
        labels=["where"],
    )
    held.add_metric(["memory"], float(size.get("table_bytes", 0) + size.get("index_bytes", 0)))
    held.add_metric(["log"], float(size.get("log_file_bytes", 0)))
    yield from (entries, held)


def _histogram(name: str, doc: str, labelnames: list[str], series: dict[tuple[str, ...], Hist]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=labelnames)
    merged: dict[tuple[str, ...], Hist] = {}
    for labels, hist in series.items():
        if labels not in merged:
            merged[labels] = Hist(hist.bounds)
        merged[labels].merge(hist)
    for labels, hist in merged.items():
        family.add_metric(list(labels), hist.buckets(), hist.total)
    return family
