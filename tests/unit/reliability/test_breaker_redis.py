"""The Redis breaker store against a real redis-server: same transitions, shared by two boards."""

from __future__ import annotations

import asyncio

import pytest

from fastroute.reliability.breaker import BreakerBoard, BreakerPolicy
from fastroute.reliability.breaker_redis import RedisBreakerStore
from tests.fakes.redis_server import redis_url
from tests.unit.reliability.test_breaker import Clock

__all__ = ["redis_url"]
POLICY = BreakerPolicy(failures=2, window_s=10.0, cooldown_s=5.0, probe_ttl_s=20.0, retry_after_cap_s=8.0)


async def test_two_replicas_share_open_probe_and_close(redis_url: str) -> None:
    clock = Clock()
    one = BreakerBoard(RedisBreakerStore.from_url(redis_url, POLICY), ["a"], clock=clock)
    two = BreakerBoard(RedisBreakerStore.from_url(redis_url, POLICY), ["a"], clock=clock)
    try:
        await one.failure("a")
        await two.failure("a")  # failures from both replicas add up
        assert not await one.allow("a") and not await two.allow("a")
        view = (await two.views())["a"]
        assert view.state == "open" and view.open_for_s == pytest.approx(5.0)
        clock.now += 5.5
        assert await two.allow("a")  # replica two wins the probe...
        assert not await one.allow("a")  # ...so replica one does not send a second one
        await two.success("a")
        assert await one.allow("a")
        assert (await one.views())["a"].state == "closed"
    finally:
        await one.close()
        await two.close()


async def test_failed_probe_and_retry_after_and_window(redis_url: str) -> None:
    clock = Clock()
    b = BreakerBoard(RedisBreakerStore.from_url(redis_url, POLICY), ["a", "b", "c"], clock=clock)
    try:
        await b.failure("a")
        clock.now += 11
        await b.failure("a")  # the first one left the window
        assert await b.allow("a") and (await b.views())["a"].recent_failures == 1
        await b.failure("b", retry_after=3600)
        assert (await b.views())["b"].open_for_s == pytest.approx(8.0)
        await b.failure("c")
        await b.failure("c")
        clock.now += 6
        assert await b.allow("c")
        await b.failure("c")  # the probe failed: a full cool-down again
        clock.now += 4.9
        assert not await b.allow("c")
        assert b.snapshot()["c"] == "open"
    finally:
        await b.close()


async def test_unreachable_redis_fails_open() -> None:
    b = BreakerBoard(RedisBreakerStore.from_url("redis://127.0.0.1:9/0", POLICY), ["a"])
    try:
        await b.failure("a")
        await b.failure("a")
        assert await b.allow("a")
    finally:
        await b.close()


async def test_a_closed_breaker_is_trusted_for_sync_s_then_reread(redis_url: str) -> None:
    one = BreakerBoard(RedisBreakerStore.from_url(redis_url, POLICY), ["a"], sync_s=0.2)
    two = BreakerBoard(RedisBreakerStore.from_url(redis_url, POLICY), ["a"])
    try:
        assert await one.allow("a")  # reads the store: closed
        await two.failure("a")
        await two.failure("a")  # replica two opens it
        assert await one.allow("a")  # still within sync_s: no round trip, stale but bounded
        await asyncio.sleep(0.25)
        assert not await one.allow("a")  # re-read: open
        assert one.snapshot()["a"] == "open"
    finally:
        await one.close()
        await two.close()
