"""The workers' shared table: the `MemoryStore` contract, held across stores (worker processes) that share one
file; a dead worker's holds cleared; seeding once; a full table fails closed."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastroute.errors import StateUnavailable
from fastroute.governance.shared_table import FLUSH_AFTER_S, SharedTableStore
from fastroute.governance.state import Line, MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def pair(tmp_path: Path, clock: Clock | None = None) -> tuple[SharedTableStore, SharedTableStore]:
    """Two stores on one table, owned by two live pids (as two workers would be)."""
    path = tmp_path / "state.table"
    SharedTableStore.create(path, columns=4, capacity=64)
    kw = {"clock": clock} if clock is not None else {}
    a = SharedTableStore(path, pid=os.getpid(), **kw)  # type: ignore[arg-type]
    b = SharedTableStore(path, pid=os.getppid(), **kw)  # type: ignore[arg-type]
    await a.start()
    await b.start()
    assert (a.column, b.column) == (0, 1)
    return a, b


async def test_reserve_is_all_or_nothing_and_settle_replaces_the_reservation(tmp_path: Path) -> None:
    store, _ = await pair(tmp_path)
    app, dept = Line("a", 1.0, 100, "app"), Line("d", 1.5, 100, "dept")
    assert await store.reserve("r1", [app, dept], 0.6, 60) is None
    assert await store.reserve("r2", [app, dept], 0.6, 60) == 0
    assert await store.levels([app, dept]) == [(0.0, pytest.approx(0.6)), (0.0, pytest.approx(0.6))]
    await store.settle("r1", [app, dept], 0.2)
    await store.settle("r1", [app, dept], 0.2)  # settling twice counts once
    assert await store.levels([app]) == [(pytest.approx(0.2), 0.0)]
    assert await store.reserve("r3", [Line("x", 10, 100, "x"), dept], 1.31, 60) == 1
    assert await store.levels([Line("x", 10, 100, "x")]) == [(0.0, 0.0)]


async def test_two_workers_share_one_budget(tmp_path: Path) -> None:
    a, b = await pair(tmp_path)
    line = Line("app:day", 1.0, 86400, "app")
    assert await a.reserve("a1", [line], 0.6, 60) is None
    assert await b.reserve("b1", [line], 0.6, 60) == 0  # A's hold counts for B
    assert await b.levels([line]) == [(0.0, pytest.approx(0.6))]
    await a.settle("a1", [line], 0.3)
    assert await b.reserve("b1", [line], 0.6, 60) == 0  # A's settle is deferred: its hold still counts
    a.flush()
    assert await b.reserve("b1", [line], 0.6, 60) is None  # 0.3 spent + 0.6 held
    assert await a.reserve("a2", [line], 0.2, 60) == 0
    await b.settle("b1", [line], 0.6)
    await asyncio.sleep(3 * FLUSH_AFTER_S)  # B applies it by itself, with no further call
    assert await a.levels([line]) == [(pytest.approx(0.9), 0.0)]


async def test_two_workers_share_one_sliding_minute(tmp_path: Path) -> None:
    clock = Clock()
    clock.now = 60_000.0  # a minute starts
    a, b = await pair(tmp_path, clock)
    line = Line("rpm:app", 10, 120, "app")
    assert await a.rate_acquire([line], 6) is None
    assert await b.rate_acquire([line], 6) == 0
    await b.rate_add([line], 2)  # e.g. completion tokens: no check
    b.flush()
    assert await a.rate_acquire([line], 3) == 0  # 8 + 3 > 10
    clock.now += 90  # half-way into the next minute: 8 * 0.5 left of the last one
    assert await b.rate_acquire([line], 6) is None
    assert await a.rate_acquire([line], 1) == 0  # 4 + 6 + 1 > 10
    clock.now += 120  # both minutes gone
    assert await a.rate_acquire([line], 10) is None


async def test_the_table_agrees_with_memory_store_through_random_operations(tmp_path: Path) -> None:
    import random

    clock = Clock()
    a, b = await pair(tmp_path, clock)
    mem = MemoryStore(clock)
    rng = random.Random(7)
    lines = [Line(f"k{i}", rng.uniform(0.5, 3.0), 500, f"k{i}") for i in range(4)]
    live: dict[str, tuple[SharedTableStore, list[Line]]] = {}
    for step in range(400):
        op = rng.random()
        if op < 0.45:
            store, picked = rng.choice([a, b]), rng.sample(lines, rng.randint(1, 3))
            rid, amount, ttl = f"r{step}", rng.uniform(0.01, 0.8), rng.choice([5.0, 50.0])
            got = await store.reserve(rid, picked, amount, ttl)
            assert got == await mem.reserve(rid, picked, amount, ttl)
            if got is None:
                live[rid] = (store, picked)
        elif op < 0.8 and live:
            rid = rng.choice(sorted(live))
            owner, held = live.pop(rid)
            actual = rng.uniform(0, 0.3)
            await owner.settle(rid, held, actual)
            owner.flush()
            await mem.settle(rid, held, actual)
        else:
            clock.now += rng.choice([1, 3, 7])
        reader = rng.choice([a, b])
        for (got_spent, got_held), (want_spent, want_held) in zip(
            await reader.levels(lines), await mem.levels(lines), strict=True
        ):
            assert got_spent == pytest.approx(want_spent, abs=1e-9)
            assert got_held == pytest.approx(want_held, abs=1e-9)


async def test_rate_windows_agree_with_memory_store_through_random_operations(tmp_path: Path) -> None:
    import random

    clock = Clock()
    a, b = await pair(tmp_path, clock)
    mem = MemoryStore(clock)
    rng = random.Random(11)
    lines = [Line(f"rpm{i}", rng.choice([5.0, 20.0, 80.0]), 120, f"rpm{i}") for i in range(4)]
    refused = 0
    for _ in range(600):
        store, picked, amount = rng.choice([a, b]), rng.sample(lines, rng.randint(1, 3)), rng.choice([1, 2, 5])
        op = rng.random()
        if op < 0.6:
            # A store applies its own deferred additions before it checks; another's reach the table within
            # FLUSH_AFTER_S (here: at once, as if that time had passed).
            (b if store is a else a).flush()
            got = await store.rate_acquire(picked, amount)
            assert got == await mem.rate_acquire(picked, amount)
            refused += got is not None
        elif op < 0.85:  # recorded without a check, reaching the table later (deferred)
            await store.rate_add(picked, amount)
            await mem.rate_add(picked, amount)
        else:  # into the minute, or past it (the previous minute then counts in part, then not at all)
            a.flush()  # what was added before the clock moves is counted in its own minute
            b.flush()
            clock.now += rng.choice([0.5, 7.0, 31.0, 65.0])
    assert 50 < refused < 350  # both outcomes were exercised


async def test_a_dead_workers_holds_are_cleared_when_its_column_is_claimed(tmp_path: Path) -> None:
    path = tmp_path / "state.table"
    SharedTableStore.create(path, columns=2, capacity=64)
    survivor = SharedTableStore(path, pid=os.getppid())
    await survivor.start()
    crashed = SharedTableStore(path, pid=dead_pid())  # it took column 1, then died holding 0.9
    await crashed.start()
    assert (survivor.column, crashed.column) == (0, 1)
    line = Line("app:day", 1.0, 86400, "app")
    assert await crashed.reserve("lost", [line], 0.9, 600) is None
    assert await survivor.reserve("s1", [line], 0.5, 60) == 0  # held until someone takes the column
    respawned = SharedTableStore(path, pid=os.getpid())
    await respawned.start()
    assert respawned.column == 1
    assert await survivor.reserve("s1", [line], 0.5, 60) is None


async def test_holds_lapse_with_their_time_to_live_for_other_workers(tmp_path: Path) -> None:
    clock = Clock()
    a, b = await pair(tmp_path, clock)
    line = Line("app:day", 1.0, 86400, "app")
    assert await a.reserve("stuck", [line], 0.9, ttl_s=30) is None
    assert await b.reserve("next", [line], 0.5, 60) == 0
    clock.now += 31  # A never comes back to purge it: B reads its valid-until
    assert await b.reserve("next", [line], 0.5, 60) is None


async def test_seeding_from_the_ledger_happens_once_per_table(tmp_path: Path) -> None:
    a, b = await pair(tmp_path)
    line = Line("app:month", 10.0, 86400, "app")
    assert a.seed([("app:month", 4.0, 86400)]) is True
    assert b.seed([("app:month", 4.0, 86400)]) is False
    assert await b.levels([line]) == [(pytest.approx(4.0), 0.0)]


async def test_a_full_table_fails_closed_and_expired_counters_make_room(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "state.table"
    SharedTableStore.create(path, columns=1, capacity=16)
    store = SharedTableStore(path, clock=clock)
    await store.start()
    for i in range(16):
        assert await store.reserve(f"r{i}", [Line(f"k{i}", 1.0, 10, "k")], 0.1, 5) is None
    with pytest.raises(StateUnavailable):
        await store.reserve("r16", [Line("k16", 1.0, 10, "k")], 0.1, 5)
    clock.now += 11  # every counter above has expired
    assert await store.reserve("r16", [Line("k16", 1.0, 10, "k")], 0.1, 5) is None
    assert await store.levels([Line("k3", 1.0, 10, "k")]) == [(0.0, 0.0)]  # a lapsed key starts afresh


async def test_a_missing_table_is_created_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    store = SharedTableStore(tmp_path / "new.table", columns=2)
    await store.start()
    assert await store.reserve("r", [Line("k", 1.0, 10, "k")], 0.5, 5) is None
    await store.close()
    (tmp_path / "junk.table").write_bytes(b"not a table" * 100)
    with pytest.raises(StateUnavailable):
        await SharedTableStore(tmp_path / "junk.table").start()


def _spend(path: Path, index: int, results: multiprocessing.Queue[int]) -> None:  # type: ignore[type-arg]
    async def main() -> int:
        store = SharedTableStore(path)
        await store.start()
        line = Line("app:day", 1.0, 86400, "app")
        won = 0
        for i in range(250):
            if await store.reserve(f"{index}-{i}", [line], 0.005, 600) is None:
                await store.settle(f"{index}-{i}", [line], 0.005)
                won += 1
        await store.close()
        return won

    results.put(asyncio.run(main()))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_processes_racing_for_one_budget_never_overspend(tmp_path: Path) -> None:
    path = tmp_path / "state.table"
    SharedTableStore.create(path, columns=8, capacity=64)
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[int] = context.Queue()  # type: ignore[assignment]
    procs = [context.Process(target=_spend, args=(path, i, results)) for i in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0] * 4
    won = sum(results.get(timeout=5) for _ in procs)
    assert won == 200  # 4 x 250 tries of 0.005 against 1.00: exactly the budget, never more


async def test_deferred_records_reach_the_table_when_the_store_closes(tmp_path: Path) -> None:
    a, b = await pair(tmp_path)
    line = Line("app:day", 1.0, 86400, "app")
    rate = Line("tpm:app", 100, 120, "app")
    assert await a.reserve("a1", [line], 0.5, 60) is None
    await a.settle("a1", [line], 0.25)
    await a.rate_add([rate], 40)
    assert await b.levels([line]) == [(0.0, pytest.approx(0.5))]  # still the hold: the safe side
    await a.close()
    assert await b.levels([line]) == [(pytest.approx(0.25), 0.0)]
    assert await b.rate_acquire([rate], 61) == 0  # A's 40 tokens count
