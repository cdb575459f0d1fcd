"""Visibility: Prometheus metrics, the JSON request log, savings stats and the dashboard.

Composition (see `fastroute.server.composition`)::

    stage = ObservabilityStage(ObservabilitySettings.from_env(env), catalogue, ledger=shared_ledger)
    stages.insert(0, stage)                       # first: its on_finish runs last, on final state
    stage.attach(health=breaker_probe, budgets=budget_probe)   # optional sources
    install(app, stage, settings.admin_token)     # /metrics, /admin/stats, /dashboard
"""

from fastroute.observability.metrics import GatewayMetrics
from fastroute.observability.request_log import RequestLog
from fastroute.observability.settings import ObservabilitySettings
from fastroute.observability.sources import BudgetStatus, DeploymentHealth
from fastroute.observability.stage import ObservabilityStage
from fastroute.observability.stats import PERIODS, StatsBook

__all__ = [
    "PERIODS",
    "BudgetStatus",
    "DeploymentHealth",
    "GatewayMetrics",
    "ObservabilitySettings",
    "ObservabilityStage",
    "RequestLog",
    "StatsBook",
]
