"""Circuit breaker transitions on a fake clock: open after N failures in a window, one half-open probe."""

from __future__ import annotations

import pytest

from fastroute.reliability.breaker import BreakerBoard, BreakerPolicy, InProcessBreakerStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def board(clock: Clock, **policy: float) -> BreakerBoard:
    p = BreakerPolicy(**{"failures": 3, "window_s": 10.0, "cooldown_s": 5.0, "probe_ttl_s": 20.0, **policy})  # type: ignore[arg-type]
    return BreakerBoard(InProcessBreakerStore(p), ["a", "b"], clock=clock)


async def test_opens_after_n_failures_in_the_window_and_only_for_that_deployment() -> None:
    clock = Clock()
    b = board(clock)
    for _ in range(2):
        await b.failure("a")
    assert await b.allow("a")
    await b.failure("a")
    assert b.snapshot() == {"a": "open", "b": "closed"}
    assert not await b.allow("a")
    assert await b.allow("b")
    views = await b.views()
    assert views["a"].state == "open" and views["a"].open_for_s == pytest.approx(5.0)


async def test_failures_outside_the_window_do_not_count() -> None:
    clock = Clock()
    b = board(clock)
    await b.failure("a")
    await b.failure("a")
    clock.now += 11
    await b.failure("a")
    assert b.snapshot()["a"] == "closed"


async def test_half_open_lets_exactly_one_probe_through_then_closes_on_success() -> None:
    clock = Clock()
    b = board(clock, failures=1)
    await b.failure("a")
    clock.now += 5.1
    assert await b.allow("a")  # the probe
    assert b.snapshot()["a"] == "half_open"
    assert not await b.allow("a")  # everyone else waits for the probe
    await b.success("a")
    assert b.snapshot()["a"] == "closed"
    assert await b.allow("a") and await b.allow("a")


async def test_failed_probe_reopens_for_a_full_cooldown() -> None:
    clock = Clock()
    b = board(clock, failures=1)
    await b.failure("a")
    clock.now += 6
    assert await b.allow("a")
    await b.failure("a")
    assert b.snapshot()["a"] == "open"
    clock.now += 4.9
    assert not await b.allow("a")
    clock.now += 0.2
    assert await b.allow("a")


async def test_a_lost_probe_frees_its_slot_after_the_probe_ttl() -> None:
    clock = Clock()
    b = board(clock, failures=1, probe_ttl_s=3.0)
    await b.failure("a")
    clock.now += 5.5
    assert await b.allow("a")
    clock.now += 1
    assert not await b.allow("a")
    clock.now += 2.5
    assert await b.allow("a")


async def test_retry_after_keeps_the_breaker_open_that_long_capped() -> None:
    clock = Clock()
    b = board(clock, retry_after_cap_s=8.0)
    await b.failure("a", retry_after=7.0)
    assert b.snapshot()["a"] == "open"
    clock.now += 6.9
    assert not await b.allow("a")
    clock.now += 0.2
    assert await b.allow("a")
    await b.failure("b", retry_after=3600)
    assert (await b.views())["b"].open_for_s == pytest.approx(8.0)


async def test_a_broken_store_fails_open() -> None:
    class Broken(InProcessBreakerStore):
        async def allow(self, name: str, now: float) -> tuple[str, bool]:
            raise ConnectionError("redis down")

        async def record_failure(self, name: str, now: float, retry_after: float | None) -> str:
            raise ConnectionError("redis down")

    b = BreakerBoard(Broken(BreakerPolicy()), ["a"])
    await b.failure("a")
    assert await b.allow("a")
