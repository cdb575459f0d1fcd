"""`MemoryStore` against the straightforward implementation it replaced (a heap of expiries per counter,
rate windows pruned on every call): the same answers and the same float totals, step by step, through
random reservations, settles, re-reservations, expiries, rate checks and clock jumps (backwards too)."""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence

from fastroute.governance.state import RATE_WINDOW_S, Line, MemoryStore, SettledIds, over_budget, sliding_level


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class ReferenceCounter:
    """The counter as it was: a heap of (expiry, rid), stale entries skipped, compacted when large."""

    def __init__(self, expires: float) -> None:
        self.spent = 0.0
        self.reserved: dict[str, tuple[float, float]] = {}
        self.expires = expires
        self.total = 0.0
        self.heap: list[tuple[float, str]] = []

    def add(self, rid: str, amount: float, expiry: float) -> None:
        old = self.reserved.get(rid)
        if old is not None:
            self.total -= old[0]
        self.reserved[rid] = (amount, expiry)
        self.total += amount
        heapq.heappush(self.heap, (expiry, rid))

    def drop(self, rid: str) -> None:
        old = self.reserved.pop(rid, None)
        if old is not None:
            self.total = self.total - old[0] if self.reserved else 0.0

    def live_reserved(self, now: float) -> float:
        while self.heap and self.heap[0][0] <= now:
            exp, rid = heapq.heappop(self.heap)
            held = self.reserved.get(rid)
            if held is not None and held[1] == exp:
                self.drop(rid)
        if len(self.heap) > 4 * len(self.reserved) + 64:
            self.heap = [(exp, rid) for rid, (_, exp) in self.reserved.items()]
            heapq.heapify(self.heap)
        return self.total


class ReferenceStore:
    """`MemoryStore` as it was (synchronous; the async wrappers added nothing)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.counters: dict[str, ReferenceCounter] = {}
        self.windows: dict[str, dict[int, float]] = {}
        self.settled = SettledIds()

    def counter(self, line: Line, now: float) -> ReferenceCounter:
        c = self.counters.get(line.key)
        if c is None or c.expires <= now:
            c = self.counters[line.key] = ReferenceCounter(now + line.ttl_s)
        return c

    def reserve(self, rid: str, lines: Sequence[Line], amount: float, ttl_s: float) -> int | None:
        now = self.clock()
        counters = [self.counter(line, now) for line in lines]
        for i, (line, c) in enumerate(zip(lines, counters, strict=True)):
            if over_budget(line, c.spent + c.live_reserved(now), amount):
                return i
        for c in counters:
            c.add(rid, amount, now + ttl_s)
        return None

    def settle(self, rid: str, lines: Sequence[Line], actual: float) -> None:
        if not self.settled.first(rid):
            return
        now = self.clock()
        for line in lines:
            c = self.counter(line, now)
            c.drop(rid)
            c.spent += actual

    def levels(self, lines: Sequence[Line]) -> list[tuple[float, float]]:
        now = self.clock()
        return [(c.spent, c.live_reserved(now)) for c in (self.counter(line, now) for line in lines)]

    def window_level(self, key: str, now: float) -> tuple[dict[int, float], int, float]:
        idx = int(now // RATE_WINDOW_S)
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = {}
        elif len(w) > 2 or (w and min(w) < idx - 1):
            for old in [k for k in w if k < idx - 1]:
                del w[old]
        return w, idx, sliding_level(w.get(idx - 1, 0.0), w.get(idx, 0.0), now)

    def rate_acquire(self, lines: Sequence[Line], amount: float) -> int | None:
        now = self.clock()
        states = [self.window_level(line.key, now) for line in lines]
        for i, (line, (_, _, level)) in enumerate(zip(lines, states, strict=True)):
            if level + amount > line.limit:
                return i
        for w, idx, _ in states:
            w[idx] = w.get(idx, 0.0) + amount
        return None

    def rate_add(self, lines: Sequence[Line], amount: float) -> None:
        now = self.clock()
        for line in lines:
            w, idx, _ = self.window_level(line.key, now)
            w[idx] = w.get(idx, 0.0) + amount


async def test_budget_counters_match_the_heap_implementation_exactly() -> None:
    clock = Clock()
    store, ref = MemoryStore(clock), ReferenceStore(clock)
    rng = random.Random(11)
    lines = [Line("a", 40.0, 900, "a"), Line("b", 25.0, 5_000, "b"), Line("c", 1e9, 100_000, "c")]
    rids = [f"r{i}" for i in range(60)]
    for step in range(6000):
        op = rng.random()
        some = rng.sample(lines, rng.randint(1, 3))
        rid = rng.choice(rids)
        if op < 0.45:  # reserve (re-reserving a live id replaces its amount and expiry)
            amount, ttl = rng.uniform(0.0, 3.0), rng.choice((5.0, 30.0, 300.0, 2_000.0))
            assert await store.reserve(rid, some, amount, ttl) == ref.reserve(rid, some, amount, ttl)
        elif op < 0.75:
            actual = rng.choice((0.0, rng.uniform(0.0, 2.0)))
            if rng.random() < 0.5:  # let ids be settled again later, as tests and restarts do
                store._settled.discard(rid)
                ref.settled.discard(rid)
            await store.settle(rid, some, actual)
            ref.settle(rid, some, actual)
        elif op < 0.97:
            clock.now += rng.choice((0.0, rng.uniform(0.0, 40.0), rng.uniform(0.0, 400.0)))
        else:
            clock.now -= rng.uniform(0.0, 60.0)  # wall clocks step back
        assert await store.levels(lines) == ref.levels(lines), step  # exact: same float operations


async def test_rate_windows_match_the_pruning_implementation_exactly() -> None:
    clock = Clock()
    store, ref = MemoryStore(clock), ReferenceStore(clock)
    rng = random.Random(5)
    lines = [Line("rpm:a", 30.0, 120, "a"), Line("rpm:b", 55.0, 120, "b"), Line("tpm:c", 400.0, 120, "c")]
    for step in range(8000):
        op = rng.random()
        some = rng.sample(lines, rng.randint(1, 3))
        if op < 0.55:
            amount = rng.choice((1.0, rng.uniform(0.0, 40.0)))
            assert await store.rate_acquire(some, amount) == ref.rate_acquire(some, amount), step
        elif op < 0.75:
            amount = rng.uniform(0.0, 20.0)
            await store.rate_add(some, amount)
            ref.rate_add(some, amount)
        elif op < 0.95:
            clock.now += rng.choice((0.5, rng.uniform(0.0, 30.0), rng.uniform(0.0, 200.0)))
        else:
            clock.now -= rng.choice((rng.uniform(0.0, 30.0), rng.uniform(60.0, 200.0)))  # back, across minutes
        # the same per-minute counts kept (and pruned) for every key
        assert {k: w.counts for k, w in store._windows.items()} == ref.windows, step
