"""`ReliabilitySettings`: retry, backoff, escalation, circuit-breaker and hedging knobs from `FASTROUTE_*`.

Pure: reads only the mapping it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastroute.env_values import Env, SettingsError, env_bool, env_float, env_int


@dataclass(frozen=True)
class ReliabilitySettings:
    """How hard fastroute tries before giving up on a request, and when it stops trying a deployment.

    Defaults are small on purpose: a gateway adds seconds, not minutes, to a failing request.
    """

    max_attempts: int = 6  # all upstream calls for one request, hedges and escalations included
    retries_per_deployment: int = 1  # extra calls to the same deployment after a transient failure
    backoff_base_s: float = 0.05
    backoff_max_s: float = 1.0
    max_retry_after_s: float = 2.0  # honour an upstream Retry-After up to this; longer means move on
    escalate: bool = True  # after the tier's chain fails, try the next tier up (auto-routed requests only)
    breaker_failures: int = 5  # failures within the window that open a deployment's breaker
    breaker_window_s: float = 30.0
    breaker_cooldown_s: float = 15.0
    breaker_retry_after_cap_s: float = 60.0  # an upstream Retry-After keeps the breaker open at most this long
    breaker_sync_s: float = 0.25  # with Redis: trust a closed breaker this long before reading shared state again
    hedge: bool = True  # realtime requests may send a second request when the first is slower than its p95
    hedge_min_samples: int = 10  # latency samples a deployment needs before its p95 is trusted
    hedge_min_delay_s: float = 0.05
    ewma_alpha: float = 0.2
    body_timeout_s: float = 10.0  # a request body must arrive within this (slow-body protection)

    def __post_init__(self) -> None:
        if self.backoff_max_s < self.backoff_base_s:
            raise SettingsError("FASTROUTE_BACKOFF_MAX_S must be at least FASTROUTE_BACKOFF_BASE_S")

    @classmethod
    def from_env(cls, env: Env) -> ReliabilitySettings:
        return cls(
            max_attempts=env_int(env, "FASTROUTE_MAX_ATTEMPTS", cls.max_attempts, minimum=1, maximum=32),
            retries_per_deployment=env_int(
                env, "FASTROUTE_RETRIES_PER_DEPLOYMENT", cls.retries_per_deployment, minimum=0, maximum=10
            ),
            backoff_base_s=env_float(env, "FASTROUTE_BACKOFF_BASE_S", cls.backoff_base_s, minimum=0),
            backoff_max_s=env_float(env, "FASTROUTE_BACKOFF_MAX_S", cls.backoff_max_s, minimum=0),
            max_retry_after_s=env_float(env, "FASTROUTE_MAX_RETRY_AFTER_S", cls.max_retry_after_s, minimum=0),
            escalate=env_bool(env, "FASTROUTE_ESCALATE", cls.escalate),
            breaker_failures=env_int(env, "FASTROUTE_BREAKER_FAILURES", cls.breaker_failures, minimum=1),
            breaker_window_s=env_float(env, "FASTROUTE_BREAKER_WINDOW_S", cls.breaker_window_s, minimum=0.001),
            breaker_cooldown_s=env_float(env, "FASTROUTE_BREAKER_COOLDOWN_S", cls.breaker_cooldown_s, minimum=0.001),
            breaker_retry_after_cap_s=env_float(
                env, "FASTROUTE_BREAKER_RETRY_AFTER_CAP_S", cls.breaker_retry_after_cap_s, minimum=0
            ),
            breaker_sync_s=env_float(env, "FASTROUTE_BREAKER_SYNC_S", cls.breaker_sync_s, minimum=0),
            hedge=env_bool(env, "FASTROUTE_HEDGE", cls.hedge),
            hedge_min_samples=env_int(env, "FASTROUTE_HEDGE_MIN_SAMPLES", cls.hedge_min_samples, minimum=1),
            hedge_min_delay_s=env_float(env, "FASTROUTE_HEDGE_MIN_DELAY_S", cls.hedge_min_delay_s, minimum=0),
            ewma_alpha=env_float(env, "FASTROUTE_EWMA_ALPHA", cls.ewma_alpha, minimum=0.001, maximum=1.0),
            body_timeout_s=env_float(env, "FASTROUTE_BODY_TIMEOUT_S", cls.body_timeout_s, minimum=0.001),
        )
