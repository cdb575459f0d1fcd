"""The in-process state store: atomic multi-line reservations, settle-once, expiry, sliding rate windows."""

from __future__ import annotations

import pytest

from fastroute.governance.limits import chain_worst_case, worst_case_cost
from fastroute.governance.state import Line, MemoryStore
from fastroute.simulator.demo import demo_catalogue


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_reserve_is_all_or_nothing_and_settle_replaces_the_reservation() -> None:
    store = MemoryStore()
    app, dept = Line("a", 1.0, 100, "app"), Line("d", 1.5, 100, "dept")
    assert await store.reserve("r1", [app, dept], 0.6, 60) is None
    assert await store.reserve("r2", [app, dept], 0.6, 60) == 0  # app line would exceed
    assert await store.levels([app, dept]) == [(0.0, pytest.approx(0.6)), (0.0, pytest.approx(0.6))]
    await store.settle("r1", [app, dept], 0.2)
    await store.settle("r1", [app, dept], 0.2)  # settling twice counts once
    assert await store.levels([app]) == [(pytest.approx(0.2), 0.0)]
    assert await store.reserve("r3", [Line("x", 10, 100, "x"), dept], 1.31, 60) == 1  # dept: 0.2 + 1.31 > 1.5
    assert await store.levels([Line("x", 10, 100, "x")]) == [(0.0, 0.0)]  # nothing reserved on failure


async def test_unsettled_reservations_expire() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    line = Line("a", 1.0, 1000, "app")
    assert await store.reserve("crashed", [line], 0.9, ttl_s=30) is None
    assert await store.reserve("next", [line], 0.5, ttl_s=30) == 0
    clock.now += 31
    assert await store.reserve("next", [line], 0.5, ttl_s=30) is None


async def test_live_total_matches_a_rescan_through_many_reservations_settles_and_expiries() -> None:
    """The running total of live reservations equals a brute-force sum at every step (no drift, no
    leaks), through mixed TTLs, re-reservations of the same id, settles and expiries."""
    import random

    clock = Clock()
    store = MemoryStore(clock)
    line = Line("a", 1e9, 10_000, "app")
    rng = random.Random(7)
    live: dict[str, tuple[float, float]] = {}
    for step in range(3000):
        op = rng.random()
        rid = f"r{rng.randrange(400)}"
        if op < 0.5:
            amount, ttl = rng.uniform(0.01, 5.0), rng.choice((5.0, 30.0, 300.0))
            assert await store.reserve(rid, [line], amount, ttl) is None
            live[rid] = (amount, clock.now + ttl)
        elif op < 0.8:
            await store.settle(f"{rid}-{step}", [line], 0.0)  # unknown id: releases nothing
            if rid in live:
                store._settled.discard(rid)
                await store.settle(rid, [line], 0.0)
                del live[rid]
        else:
            clock.now += rng.uniform(0.0, 20.0)
        expected = sum(a for a, exp in live.values() if exp > clock.now)
        assert (await store.levels([line]))[0][1] == pytest.approx(expected, abs=1e-6)


async def test_sliding_minute_counts_the_previous_window_by_weight() -> None:
    clock = Clock()
    clock.now = 60.0 * 1000  # start of a window
    store = MemoryStore(clock)
    rpm = Line("rpm:a", 10, 120, "rpm")
    for _ in range(10):
        assert await store.rate_acquire([rpm], 1) is None
    assert await store.rate_acquire([rpm], 1) == 0
    clock.now += 60 + 30  # half-way through the next window: 10 * 0.5 = 5 still count
    for _ in range(5):
        assert await store.rate_acquire([rpm], 1) is None
    assert await store.rate_acquire([rpm], 1) == 0


def test_worst_case_uses_max_tokens_capped_by_the_model_and_the_priciest_fallback() -> None:
    cat = demo_catalogue("http://x")
    mid = cat.models["sim-mid"]
    assert worst_case_cost(mid, 100, 50) == pytest.approx(mid.cost(126, 50))
    assert worst_case_cost(mid, 100, None) == pytest.approx(mid.cost(126, mid.max_output_tokens))
    assert worst_case_cost(mid, 100, 10**6) == worst_case_cost(mid, 100, None)
    chain = cat.tier_chain("frontier")
    assert chain_worst_case(chain, 100, 50) == max(worst_case_cost(m, 100, 50) for m in chain)


def test_stages_on_a_redis_store_run_concurrently_in_a_batch() -> None:
    # pipeline.batch runs a stage's hook concurrently over a batch only when the stage says it waits on the
    # network: Redis-backed limits and budgets must, in-process ones need not (one after another is cheaper).
    from fastroute.catalogue import Catalogue
    from fastroute.governance.limits import BudgetStage, RateLimitStage
    from fastroute.governance.redis_store import RedisStore
    from fastroute.governance.state import MemoryStore

    catalogue = Catalogue.default()
    for store, remote in ((RedisStore("redis://127.0.0.1:1"), True), (MemoryStore(), False)):
        assert store.remote is remote
        assert RateLimitStage(store).awaits_io is remote
        assert BudgetStage(store, catalogue).awaits_io is remote
