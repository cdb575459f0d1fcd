"""Which failures are retried where, and the jittered backoff bounds."""

from __future__ import annotations

import random

import pytest

from fastroute.errors import UpstreamError, UpstreamTimeout
from fastroute.reliability.retry_policy import backoff_delay, judge


def verdict(error: UpstreamError, done: int = 0, retries: int = 1, max_ra: float = 2.0):  # type: ignore[no-untyped-def]
    return judge(
        error,
        same_retries_done=done,
        retries_per_deployment=retries,
        max_retry_after_s=max_ra,
        backoff_base_s=0.1,
        backoff_max_s=1.0,
        rng=random.Random(7),
    )


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    rng = random.Random(1)
    for attempt in range(8):
        ceiling = min(1.0, 0.1 * 2**attempt)
        samples = [backoff_delay(attempt, 0.1, 1.0, rng) for _ in range(200)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole interval, not a constant
        assert min(samples) < ceiling * 0.2


@pytest.mark.parametrize("reason", ["rate_limited", "overloaded", "connection"])
def test_transient_failures_retry_the_same_deployment_once(reason: str) -> None:
    e = UpstreamError("x", retryable=True, reason=reason)
    first = verdict(e)
    assert first.move_on and first.counts_against_breaker
    assert first.retry_same_after is not None and 0 <= first.retry_same_after <= 0.1
    assert verdict(e, done=1).retry_same_after is None  # retries_per_deployment=1 used up


def test_retry_after_is_honoured_up_to_the_maximum_wait() -> None:
    short = UpstreamError("x", retryable=True, reason="rate_limited", retry_after=1.5)
    assert verdict(short).retry_same_after == 1.5
    long = UpstreamError("x", retryable=True, reason="rate_limited", retry_after=30)
    v = verdict(long)
    assert v.retry_same_after is None and v.move_on  # too long to wait: move on


@pytest.mark.parametrize(
    "error",
    [
        UpstreamError("x", retryable=True, reason="http_500"),
        UpstreamError("x", retryable=True, reason="malformed"),
        UpstreamTimeout("x", retryable=True, reason="timeout"),
    ],
)
def test_broken_answers_move_on_without_a_same_deployment_retry(error: UpstreamError) -> None:
    v = verdict(error)
    assert v.move_on and v.retry_same_after is None and v.counts_against_breaker


def test_client_errors_are_not_retried_nor_held_against_the_deployment() -> None:
    v = verdict(UpstreamError("x", status=400, retryable=False, reason="bad_request"))
    assert not v.move_on and not v.counts_against_breaker


def test_bad_upstream_key_moves_to_another_provider_only() -> None:
    v = verdict(UpstreamError("x", status=502, retryable=False, reason="upstream_auth"))
    assert v.move_on and v.other_provider_only and v.counts_against_breaker and v.retry_same_after is None


def test_context_length_asks_for_a_larger_window() -> None:
    v = verdict(UpstreamError("x", status=400, retryable=False, reason="context_length"))
    assert v.escalate_for_context and not v.counts_against_breaker
