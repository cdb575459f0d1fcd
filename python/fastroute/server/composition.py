"""The composition root for pipeline stages and extra routes: which subsystems run, in which order.

Order matters: `on_request` / `on_routed` run first to last, `on_finish` last to first, so observers
(metrics, logs, ledger) sit first and see every request's final state. Each subsystem adds itself here.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from fastroute.cache import SemanticCache
from fastroute.cache.stage import CacheStage
from fastroute.catalogue import Catalogue
from fastroute.compliance.report import install as install_compliance_report
from fastroute.compliance.stage import ComplianceStage
from fastroute.embedding import EMBEDDING_DIM, load_embedder
from fastroute.governance.tenants import TenantStage
from fastroute.governance.wiring import budget_probe, build_governance, install_governance_routes
from fastroute.ledger import LedgerStage, SqliteLedger
from fastroute.native import PromptAnalyzer
from fastroute.observability import ObservabilityStage
from fastroute.observability.routes import install as install_observability
from fastroute.pipeline import Stage
from fastroute.quality import QualityStage
from fastroute.quality.metrics import QualityCollector
from fastroute.quality.routes import TenantIdentifier
from fastroute.quality.routes import install as install_quality
from fastroute.server.keys import GATEWAY
from fastroute.settings import Settings


def build_cache_stage(settings: Settings, analyzer: PromptAnalyzer | None = None) -> CacheStage | None:
    """The response cache, sharing the analysis embedding (its own embedder only for text without one).
    With `analyzer`, that embedder is the analyzer's (one copy of the table in memory, not two)."""
    if not settings.cache.enabled:
        return None
    shared = analyzer.embedder if analyzer is not None else None
    embed = shared.embed if shared is not None else load_embedder(settings.models_dir).embed
    # Answers live in anonymous files under the data directory (the OS page cache), not in the heap.
    cache = SemanticCache(settings.cache, embed, EMBEDDING_DIM, body_dir=settings.data_dir / "cache")
    return CacheStage(settings.cache, cache)


def metrics_share_dir(settings: Settings) -> Path:
    """Where worker processes publish their metrics to each other (emptied when the server starts)."""
    return settings.data_dir / "metrics-workers"


def build_stages(settings: Settings, catalogue: Catalogue, analyzer: PromptAnalyzer | None = None) -> list[Stage]:
    """The default stages for a gateway built from `settings` (`analyzer`: the gateway's, to share its tables)."""
    stages: list[Stage] = []
    # observers first (visibility: metrics + request log; governance: ledger)
    ledger = LedgerStage(SqliteLedger(settings.data_dir / "ledger.sqlite3"))
    observer = ObservabilityStage(settings.observability, catalogue, ledger=ledger.ledger)
    if settings.server.workers > 1:  # one /metrics answer counts every worker's requests
        observer.share_metrics(metrics_share_dir(settings))
    stages.append(observer)
    stages.append(ledger)
    # quality loop: records routing, raises demoted tiers before governance's budgets and the cache see them
    stages.append(QualityStage(settings.quality, catalogue, settings.data_dir))
    # then tenants, policy, PII, rate limits and the cost ceiling (governance)
    governance = build_governance(settings, catalogue, ledger=ledger.ledger)
    stages += governance.before_cache
    # compliance right after tenant identification: content rules and residency before limits and the cost ceiling
    stages.insert(next(i for i, s in enumerate(stages) if isinstance(s, TenantStage)) + 1, ComplianceStage(catalogue))
    for observer in (s for s in stages if isinstance(s, ObservabilityStage)):
        observer.attach(budgets=budget_probe(governance.runtime))
    # then the response cache (semantic cache)
    cache_stage = build_cache_stage(settings, analyzer)
    if cache_stage is not None:
        stages.append(cache_stage)
        for observer in (s for s in stages if isinstance(s, ObservabilityStage)):
            observer.attach(cache_events=lambda: cache_stage.cache.counters, cache_size=cache_stage.cache.memory)
    # budgets last: a cache hit above reserves nothing (governance)
    stages += governance.after_cache
    return stages


def install_routes(app: web.Application, settings: Settings, stages: list[Stage]) -> None:
    """Admin, metrics and dashboard routes contributed by subsystems."""
    observability = next((s for s in stages if isinstance(s, ObservabilityStage)), None)
    if observability is not None:
        install_observability(app, observability)
    quality = next((s for s in stages if isinstance(s, QualityStage)), None)
    if quality is not None and quality.settings.enabled:
        quality.bind(app[GATEWAY])
        tenants = next((s for s in stages if isinstance(s, TenantIdentifier)), None)
        install_quality(app, quality, tenants)
        if observability is not None:  # quality gauges beside the savings, in visibility's registry
            limit = settings.observability.max_label_values
            observability.metrics.registry.register(QualityCollector(quality, max_apps=limit))
    install_governance_routes(app, settings, stages)
    install_compliance_report(app)  # after governance: it reads the runtime and ledger governance installed
