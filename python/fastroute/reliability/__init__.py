"""Reliability: failover, retries, escalation, circuit breakers, latency classes, hedging, overload bound.

The gateway calls `Dispatcher.complete` / `Dispatcher.stream`; the app wires the rest with
`install_reliability`. Metrics read `BreakerBoard.snapshot()` and `LatencyBoard.snapshot()`.
"""

from fastroute.catalogue import Catalogue
from fastroute.reliability.breaker import BreakerBoard, BreakerPolicy, InProcessBreakerStore
from fastroute.reliability.dispatcher import Dispatcher
from fastroute.reliability.latency import LATENCY_CLASSES, LatencyBoard
from fastroute.reliability.limiter import InFlightLimiter
from fastroute.reliability.settings import ReliabilitySettings

__all__ = [
    "LATENCY_CLASSES",
    "BreakerBoard",
    "BreakerPolicy",
    "Dispatcher",
    "InFlightLimiter",
    "InProcessBreakerStore",
    "LatencyBoard",
    "ReliabilitySettings",
    "default_dispatcher",
]


def default_dispatcher(catalogue: Catalogue) -> Dispatcher:
    """An in-process dispatcher with default settings (for gateways built without an app)."""
    settings = ReliabilitySettings()
    policy = BreakerPolicy(settings.breaker_failures, settings.breaker_window_s, settings.breaker_cooldown_s)
    board = BreakerBoard(InProcessBreakerStore(policy), catalogue.models)
    return Dispatcher(catalogue, settings, board, LatencyBoard(settings.ewma_alpha))
