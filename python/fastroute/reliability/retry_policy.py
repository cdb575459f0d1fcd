"""Pure retry policy: which upstream failures are retried where, and how long to wait before a retry.

Pure: no I/O, no clock; randomness comes in as an argument so tests are exact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from fastroute.errors import UpstreamError

# Failures that say "try again later": capacity signals worth a second call to the same deployment.
TRANSIENT_REASONS = frozenset({"rate_limited", "overloaded", "connection"})
# Failures that say "this deployment cannot serve this request": escalate to a larger context window.
CONTEXT_REASONS = frozenset({"context_length"})
# A bad upstream key is the deployment's fault, not the request's: count it, and try another provider.
AUTH_REASONS = frozenset({"upstream_auth"})


@dataclass(frozen=True, slots=True)
class FailureVerdict:
    """What to do after one failed upstream call."""

    move_on: bool  # try the next deployment (False: give the client this error now)
    retry_same_after: float | None  # seconds before calling this deployment again (None: don't)
    counts_against_breaker: bool
    other_provider_only: bool = False  # move on, but skip deployments on the same provider
    escalate_for_context: bool = False


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """'Full jitter' exponential backoff: uniform in [0, min(max, base * 2**attempt)]."""
    ceiling = min(max_s, base_s * (2 ** max(0, attempt)))
    return rng.uniform(0.0, ceiling)


def judge(
    error: UpstreamError,
    *,
    same_retries_done: int,
    retries_per_deployment: int,
    max_retry_after_s: float,
    backoff_base_s: float,
    backoff_max_s: float,
    rng: random.Random,
) -> FailureVerdict:
    """Classifies one failure. Timeouts, 5xx and malformed answers move on at once: a retry of the same
    deployment would likely fail the same way and spend the time budget twice."""
    if error.reason in AUTH_REASONS:
        return FailureVerdict(
            move_on=True, retry_same_after=None, counts_against_breaker=True, other_provider_only=True
        )
    if error.reason in CONTEXT_REASONS:
        return FailureVerdict(
            move_on=False, retry_same_after=None, counts_against_breaker=False, escalate_for_context=True
        )
    if not error.retryable:
        return FailureVerdict(move_on=False, retry_same_after=None, counts_against_breaker=False)
    retry_after: float | None = None
    if error.reason in TRANSIENT_REASONS and same_retries_done < retries_per_deployment:
        if error.retry_after is not None:
            retry_after = error.retry_after if error.retry_after <= max_retry_after_s else None
        else:
            retry_after = backoff_delay(same_retries_done, backoff_base_s, backoff_max_s, rng)
    return FailureVerdict(move_on=True, retry_same_after=retry_after, counts_against_breaker=True)
