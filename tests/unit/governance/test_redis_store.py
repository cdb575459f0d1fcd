"""The Redis state store against a real redis-server: atomic reserve, settle once, crash expiry, rates,
and the policy bus."""

from __future__ import annotations

import asyncio

import pytest

from fastroute.governance.redis_store import RedisPolicyBus, RedisStore
from fastroute.governance.state import Line
from tests.fakes.redis_server import redis_url

__all__ = ["redis_url"]


class Clock:
    def __init__(self) -> None:
        self.now = 60.0 * 30_000_000

    def __call__(self) -> float:
        return self.now


async def test_reserve_settle_and_expiry(redis_url: str) -> None:
    clock = Clock()
    store = RedisStore(redis_url, prefix="t1", clock=clock)
    await store.start()
    try:
        app, dept = Line("a", 1.0, 3600, "app"), Line("d", 1.5, 3600, "dept")
        assert await store.reserve("r1", [app, dept], 0.6, 60) is None
        assert await store.reserve("r2", [app, dept], 0.6, 60) == 0
        await store.settle("r1", [app, dept], 0.2)
        await store.settle("r1", [app, dept], 0.2)  # a second settle of the same request is ignored
        assert await store.levels([app, dept]) == [(pytest.approx(0.2), 0.0), (pytest.approx(0.2), 0.0)]
        assert await store.reserve("crashed", [app], 0.7, 30) is None  # never settled
        assert await store.reserve("r3", [app], 0.5, 30) == 0
        clock.now += 31
        assert await store.reserve("r3", [app], 0.5, 30) is None  # the crashed reservation expired
        spent, reserved = (await store.levels([app]))[0]
        assert spent == pytest.approx(0.2) and reserved == pytest.approx(0.5)
        ttl = await store.client.ttl("t1:b:a")
        assert 0 < ttl <= 3600
    finally:
        await store.close()


async def test_concurrent_reservations_never_oversubscribe(redis_url: str) -> None:
    stores = [RedisStore(redis_url, prefix="t2") for _ in range(2)]
    for s in stores:
        await s.start()
    try:
        line = Line("shared", 10.0, 3600, "shared")
        results = await asyncio.gather(*(stores[i % 2].reserve(f"r{i}", [line], 0.3, 60) for i in range(200)))
        assert sum(r is None for r in results) == 33  # floor(10 / 0.3)
    finally:
        for s in stores:
            await s.close()


async def test_rate_window(redis_url: str) -> None:
    clock = Clock()
    store = RedisStore(redis_url, prefix="t3", clock=clock)
    await store.start()
    try:
        rpm = Line("rpm", 3, 120, "rpm")
        assert [await store.rate_acquire([rpm], 1) for _ in range(4)] == [None, None, None, 0]
        clock.now += 90  # half of the previous window still counts: 3 * 0.5 = 1.5
        assert [await store.rate_acquire([rpm], 1) for _ in range(2)] == [None, 0]
    finally:
        await store.close()


async def test_policy_bus_reaches_subscribers(redis_url: str) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()

    async def on_policy(text: str) -> None:
        await got.put(text)

    a, b = RedisPolicyBus(redis_url, prefix="t4"), RedisPolicyBus(redis_url, prefix="t4")
    await a.start(on_policy)
    await b.start(on_policy)
    try:
        await asyncio.sleep(0.1)
        await a.publish("applications: {x: {}}\n")
        texts = [await asyncio.wait_for(got.get(), 2), await asyncio.wait_for(got.get(), 2)]
        assert texts == ["applications: {x: {}}\n"] * 2
        assert await b.latest() == "applications: {x: {}}\n"
    finally:
        await a.close()
        await b.close()
