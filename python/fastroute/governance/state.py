"""Shared governance state behind one small interface: budget counters with reservations, rate windows.

`MemoryStore` is the in-process default (one replica); `redis_store.RedisStore` shares state across
replicas with atomic Lua scripts. Must not know about requests or policies: only keys, limits, amounts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

RATE_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class Line:
    """One counter a request is checked against: store key, limit, counter lifetime, and a label for messages."""

    key: str
    limit: float
    ttl_s: float
    label: str


class StateStore(Protocol):
    # True when calls wait on the network (Redis); in-process and host-local stores answer without waiting.
    remote: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def reserve(self, rid: str, lines: Sequence[Line], amount: float, ttl_s: float) -> int | None:
        """Atomically reserves `amount` on every line, or on none: returns the index of a line that would
        go over its limit (counting settled spend plus live reservations), else None."""
        ...

    async def settle(self, rid: str, lines: Sequence[Line], actual: float) -> None:
        """Drops reservation `rid` and adds `actual` spend (0 releases). Idempotent per `rid`."""
        ...

    async def levels(self, lines: Sequence[Line]) -> list[tuple[float, float]]:
        """(settled spend, live reservations) per line."""
        ...

    async def rate_acquire(self, lines: Sequence[Line], amount: float) -> int | None:
        """Sliding-minute limit: adds `amount` to every line unless one would exceed its limit (index)."""
        ...

    async def rate_add(self, lines: Sequence[Line], amount: float) -> None:
        """Adds `amount` without checking (e.g. completion tokens, known only afterwards)."""
        ...


def over_budget(line: Line, held: float, amount: float) -> bool:
    """Whether `amount` more on top of `held` (settled spend plus live reservations) passes the line's limit
    (by more than a rounding error)."""
    return held + amount > line.limit + 1e-12


def previous_minute_weight(now: float) -> float:
    """The part of the previous minute still inside the sliding window at `now` (1 at a minute's start)."""
    return 1.0 - (now % RATE_WINDOW_S) / RATE_WINDOW_S


def sliding_level(previous: float, current: float, now: float) -> float:
    """A sliding minute's level at `now`: the previous minute weighted by the part of it still inside the
    window, plus the current minute."""
    return previous * previous_minute_weight(now) + current


@dataclass(slots=True)
class _Counter:
    """Settled spend plus live reservations, with a running total so a check is O(1) amortised (it used to
    rescan every live reservation, O(in-flight requests) per check).

    Expiry: `_due` is never later than the earliest live reservation's expiry, so a check before it has
    nothing to expire (one comparison). Past it, one pass drops every expired reservation and finds the
    next `_due`; reservations are normally settled long before they expire, so that pass runs about once
    per reservation lifetime (it used to be a heap push per reservation and pops per check)."""

    spent: float = 0.0
    reserved: dict[str, tuple[float, float]] = field(default_factory=dict)  # rid -> (amount, expiry)
    expires: float = 0.0
    total: float = 0.0  # sum of live reservations' amounts
    _due: float = math.inf  # <= every live reservation's expiry

    def add(self, rid: str, amount: float, expiry: float) -> None:
        old = self.reserved.get(rid)
        if old is not None:
            self.total -= old[0]
        self.reserved[rid] = (amount, expiry)
        self.total += amount
        if expiry < self._due:
            self._due = expiry

    def drop(self, rid: str) -> None:
        old = self.reserved.pop(rid, None)
        if old is not None:
            self.total = self.total - old[0] if self.reserved else 0.0  # no float drift once idle

    def live_reserved(self, now: float) -> float:
        if now >= self._due:
            # Earliest expiry first (then rid), as the heap this replaced dropped them: same float sums.
            for _, rid in sorted((exp, rid) for rid, (_, exp) in self.reserved.items() if exp <= now):
                self.drop(rid)
            self._due = min((exp for _, exp in self.reserved.values()), default=math.inf)
        return self.total


class SettledIds:
    """Reservation ids already settled, so a second settle of one id counts once (bounded: forgets all after
    `limit`, long after any reservation's time to live)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._ids: set[str] = set()
        self._limit = limit

    def first(self, rid: str) -> bool:
        """True the first time `rid` is settled."""
        if rid in self._ids:
            return False
        self._ids.add(rid)
        if len(self._ids) > self._limit:
            self._ids.clear()
        return True

    def discard(self, rid: str) -> None:
        """Forgets `rid` (an id reused on purpose, as tests do)."""
        self._ids.discard(rid)


class _RateWindow:
    """One rate key's counts per minute index, and the minute of its last use (so the prune runs only when
    the minute changes)."""

    __slots__ = ("counts", "seen")

    def __init__(self, seen: int) -> None:
        self.counts: dict[int, float] = {}
        self.seen = seen


class MemoryStore:
    """In-process state; correct for one replica (asyncio runs each call without interleaving)."""

    remote = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counters: dict[str, _Counter] = {}
        self._windows: dict[str, _RateWindow] = {}
        self._settled = SettledIds()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _counter(self, line: Line, now: float) -> _Counter:
        c = self._counters.get(line.key)
        if c is None or c.expires <= now:
            c = self._counters[line.key] = _Counter(expires=now + line.ttl_s)
        return c

    async def reserve(self, rid: str, lines: Sequence[Line], amount: float, ttl_s: float) -> int | None:
        now = self._clock()
        counters = [self._counter(line, now) for line in lines]
        for i, c in enumerate(counters):
            if over_budget(lines[i], c.spent + c.live_reserved(now), amount):
                return i
        expiry = now + ttl_s
        for c in counters:
            c.add(rid, amount, expiry)
        return None

    async def settle(self, rid: str, lines: Sequence[Line], actual: float) -> None:
        if not self._settled.first(rid):
            return
        now = self._clock()
        for line in lines:
            c = self._counter(line, now)
            c.drop(rid)
            c.spent += actual

    def seed(self, increments: Sequence[tuple[str, float, float]]) -> bool:
        """Adds settled spend (key, amount, ttl) to the counters directly (the ledger's, at start-up); as
        `SharedTableStore.seed`, which does it once per table. Returns True: this store always seeds."""
        now = self._clock()
        for key, amount, ttl_s in increments:
            self._counter(Line(key, 0.0, ttl_s, key), now).spent += amount
        return True

    async def levels(self, lines: Sequence[Line]) -> list[tuple[float, float]]:
        now = self._clock()
        return [(c.spent, c.live_reserved(now)) for c in (self._counter(line, now) for line in lines)]

    def _window(self, key: str, idx: int) -> dict[int, float]:
        """The per-minute counts of `key`, minutes before `idx - 1` dropped (they no longer count)."""
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = _RateWindow(idx)
        elif w.seen != idx:  # a call at `seen` left nothing before `seen - 1`: only a new minute can prune
            w.seen = idx
            counts = w.counts
            if len(counts) > 2 or (counts and min(counts) < idx - 1):
                for old in [k for k in counts if k < idx - 1]:
                    del counts[old]
        return w.counts

    async def rate_acquire(self, lines: Sequence[Line], amount: float) -> int | None:
        now = self._clock()
        idx = int(now // RATE_WINDOW_S)
        windows = []
        for line in lines:  # every line's window moves on first (as before), then the check
            windows.append(self._window(line.key, idx))
        for i, w in enumerate(windows):
            if sliding_level(w.get(idx - 1, 0.0), w.get(idx, 0.0), now) + amount > lines[i].limit:
                return i
        for w in windows:
            w[idx] = w.get(idx, 0.0) + amount
        return None

    async def rate_add(self, lines: Sequence[Line], amount: float) -> None:
        idx = int(self._clock() // RATE_WINDOW_S)
        for line in lines:
            w = self._window(line.key, idx)
            w[idx] = w.get(idx, 0.0) + amount
