"""`SharedTableStore`: budget counters and rate windows shared by the worker processes of one host
(`FASTROUTE_WORKERS=N` without Redis), in a memory-mapped file guarded by a file lock.

The same idea as nginx's shared-memory zones for `limit_req`: one fixed-size table every worker maps, each
operation a few microseconds under an exclusive `flock` (released by the kernel if a worker dies holding it).
The supervisor creates the file empty before forking (`SharedTableStore.create`); each worker maps it in
`start()`, after the fork, and claims a column of its own.

Layout: a header (magic, version, capacity, columns, a "seeded from the ledger" flag), one pid per column,
then `capacity` slots found by open addressing on a 64-bit key hash. A slot holds the key hash, its expiry,
three numbers and one (amount, valid-until) pair per column:
- a budget counter: settled spend (shared by all) plus each worker's live reservations. A worker keeps its
  own reservations in memory (with their expiries, as `MemoryStore` does) and writes its exact total into its
  column, so a crashed worker's holds lapse by their valid-until and a new worker claiming the column clears it;
- a rate window: the minute's index, the previous and the current minute's amounts (the sliding minute of
  `MemoryStore`).
Expired slots keep their hash (a tombstone for probing) until a new key reuses them.

Only the calls that decide (`reserve`, `rate_acquire`) take the lock at once. What merely records (`settle`,
`rate_add`) is applied with the next locked call, or `FLUSH_AFTER_S` later if none comes: half the lock
round trips per request, and until then other workers see the reservation instead of the (smaller) spend,
which errs on the safe side.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import mmap
import os
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fastroute.errors import StateUnavailable
from fastroute.governance.state import RATE_WINDOW_S, Line, SettledIds, _Counter, over_budget, previous_minute_weight

MAGIC = b"FRSTATE1"
_HEADER = struct.Struct("<8sIIII")  # magic, capacity, columns, seeded, reserved
_HEADER_SIZE = 64
_SLOT_HEAD = struct.Struct("<Qdddd")  # key hash, expires, a, b, c
_SLOT_KEY = struct.Struct("<Qd")  # the first two of them
_WINDOW = struct.Struct("<ddd")  # the last three: a rate window's minute, previous and current amounts
_MINUTE = struct.Struct("<d8xd")  # a rate window's minute and current amount (the previous skipped)
_ROLL = struct.Struct("<dddd")  # expiry, then the window: what a new minute rewrites
_F64 = struct.Struct("<d")
# Byte offsets within a slot (`_SLOT_HEAD`): its expiry; its first number (a budget counter's settled spend, or
# a rate window's minute, where the window starts); its third (a rate window's current amount).
_EXPIRES_AT = 8
_FIRST_AT = 16
_CURRENT_AT = 32
_PAIR = struct.Struct("<dd")  # (amount, valid until) per column
DEFAULT_CAPACITY = 16_384
FLUSH_AFTER_S = 0.005  # deferred settles and rate additions reach the table at most this late


def _key_hash(key: str) -> int:
    """A 64-bit hash of the key, the same in every process (never 0: 0 marks an empty slot)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _FileLock:
    """`with` holds an exclusive `flock` on the table (a class: a generator context manager costs ~1 µs more)."""

    __slots__ = ("fd", "map")

    def __init__(self, fd: int, table: mmap.mmap) -> None:
        self.fd, self.map = fd, table

    def __enter__(self) -> mmap.mmap:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self.map

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)


class SharedTableStore:
    """`StateStore` over the host-wide table at `path` (see the module text)."""

    remote = False

    def __init__(
        self, path: Path, *, columns: int = 16, clock: Callable[[], float] = time.time, pid: int | None = None
    ) -> None:
        self.path = path
        self.columns_if_created = columns  # when no supervisor created the table (a single `create_app`)
        self._clock = clock
        self._pid = os.getpid() if pid is None else pid  # the column's owner (tests stand in live pids)
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._lock: _FileLock | None = None
        self._capacity = 0
        self._columns = 0
        self._slot_size = 0
        self._slots_at = 0
        self.column = -1
        self._mine_at = 0
        self._mine: dict[str, _Counter] = {}  # line key -> this worker's live reservations
        self._until: dict[str, float] = {}  # line key -> the latest expiry among them (while any is live)
        self._where: dict[str, tuple[int, int]] = {}  # line key -> (hash, slot offset) last found: checked, not trusted
        self._pairs = _PAIR
        self._settled = SettledIds()
        self._deferred: list[tuple[str, Sequence[Line], float]] = []  # (rid or "" for a rate add, lines, amount)
        self._flush_timer: asyncio.TimerHandle | None = None

    @staticmethod
    def create(path: Path, columns: int, capacity: int = DEFAULT_CAPACITY, *, replace: bool = True) -> None:
        """Writes an empty table: anew (the supervisor, once before the workers start), or with
        `replace=False` only if none exists yet (atomic: of several processes creating it at once, one wins)."""
        if columns < 1 or capacity < 16:
            raise ValueError("a shared table needs at least one column and 16 slots")
        size = _HEADER_SIZE + 8 * columns + capacity * (_SLOT_HEAD.size + _PAIR.size * columns)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        with tmp.open("wb") as f:
            f.write(_HEADER.pack(MAGIC, capacity, columns, 0, 0).ljust(_HEADER_SIZE, b"\0"))
            f.truncate(size)
        if replace:
            tmp.replace(path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()

    async def start(self) -> None:
        if self._map is not None:
            return
        try:
            if not self.path.exists():  # no supervisor made it (one process): create it, racing others safely
                self.create(self.path, self.columns_if_created, replace=False)
            fd = os.open(self.path, os.O_RDWR)
        except OSError as e:
            raise StateUnavailable(f"shared state table {self.path} cannot be opened: {e}") from e
        self._fd = fd
        self._map = mmap.mmap(fd, 0)
        self._lock = _FileLock(fd, self._map)
        self._where.clear()  # offsets found in a table opened before may not fit this one
        magic, capacity, columns, _, _ = _HEADER.unpack_from(self._map, 0)
        if magic != MAGIC:
            await self.close()
            raise StateUnavailable(f"{self.path} is not a fastroute shared state table")
        self._capacity, self._columns = capacity, columns
        self._slot_size = _SLOT_HEAD.size + _PAIR.size * columns
        self._pairs = struct.Struct("<" + "dd" * columns)  # every column's pair of a slot, read at once
        self._slots_at = _HEADER_SIZE + 8 * columns
        with self._locked():
            self.column = self._claim_column()
        self._mine_at = _SLOT_HEAD.size + _PAIR.size * self.column  # this worker's pair, from a slot's start

    async def close(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._map is not None:
            if self.column >= 0:  # apply what is deferred, then give the column back, holding nothing
                with self._locked() as m:
                    self._apply_deferred(m, self._clock())
                    self._clear_column(m, self.column, 0)
                self.column = -1
            self._map.close()
            self._map = None
            self._lock = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # --- the table ---

    def _locked(self) -> _FileLock:
        assert self._lock is not None, "shared state store not started"
        return self._lock

    def _claim_column(self) -> int:
        """A column whose owner is gone (or never was): ours now, with whatever it held cleared."""
        m = self._map
        assert m is not None
        for col in range(self._columns):
            (pid,) = struct.unpack_from("<q", m, _HEADER_SIZE + 8 * col)
            if pid == self._pid or not _pid_alive(pid):
                self._clear_column(m, col, self._pid)
                return col
        raise StateUnavailable(f"shared state table {self.path}: every one of its {self._columns} columns is taken")

    def _clear_column(self, m: mmap.mmap, col: int, owner: int) -> None:
        struct.pack_into("<q", m, _HEADER_SIZE + 8 * col, owner)
        for slot in range(self._capacity):
            _PAIR.pack_into(m, self._pair_at(slot, col), 0.0, 0.0)

    def _slot_at(self, slot: int) -> int:
        return self._slots_at + slot * self._slot_size

    def _pair_at(self, slot: int, col: int) -> int:
        return self._slot_at(slot) + _SLOT_HEAD.size + _PAIR.size * col

    def _find(self, m: mmap.mmap, key: str, ttl_s: float, now: float) -> int:
        """The byte offset of `key`'s slot, created (zeroed, expiring after `ttl_s`) if absent or expired."""
        seen = self._where.get(key)
        if seen is not None:  # the slot it had last time, if it still holds this key (other workers may reuse it)
            h, at = seen
            got, expires = _SLOT_KEY.unpack_from(m, at)
            if got == h and expires > now:
                return at
        else:
            h = _key_hash(key)
            if len(self._where) >= 4096:
                self._where.clear()
        at = self._slot_at(self._probe(m, h, ttl_s, now))
        self._where[key] = (h, at)
        return at

    def _probe(self, m: mmap.mmap, h: int, ttl_s: float, now: float) -> int:
        start = h % self._capacity
        reusable = -1
        for step in range(self._capacity):
            slot = (start + step) % self._capacity
            at = self._slot_at(slot)
            got, expires, _, _, _ = _SLOT_HEAD.unpack_from(m, at)
            if got == h:
                if expires <= now:
                    self._reset(m, slot, h, now + ttl_s)
                return slot
            if got == 0:
                break
            if reusable < 0 and expires <= now:
                reusable = slot
        else:
            slot = -1
        if reusable >= 0:
            slot = reusable
        if slot < 0:
            raise StateUnavailable(f"shared state table {self.path} is full ({self._capacity} live counters)")
        self._reset(m, slot, h, now + ttl_s)
        return slot

    def _reset(self, m: mmap.mmap, slot: int, h: int, expires: float) -> None:
        _SLOT_HEAD.pack_into(m, self._slot_at(slot), h, expires, 0.0, 0.0, 0.0)
        for col in range(self._columns):
            _PAIR.pack_into(m, self._pair_at(slot, col), 0.0, 0.0)

    def _reserved(self, m: mmap.mmap, at: int, now: float) -> float:
        """Live reservations of every worker on the slot at `at`."""
        held = 0.0
        pairs = iter(self._pairs.unpack_from(m, at + _SLOT_HEAD.size))
        for amount, until in zip(pairs, pairs, strict=True):  # (amount, valid until) per column
            if until > now:
                held += amount
        return held

    def _publish(self, m: mmap.mmap, at: int, key: str, now: float) -> None:
        """Writes this worker's live reservations on `key` into its column of the slot at `at`."""
        mine = self._mine.get(key)
        total = mine.live_reserved(now) if mine is not None else 0.0
        if mine is None or not mine.reserved:
            _PAIR.pack_into(m, at + self._mine_at, 0.0, 0.0)
            self._mine.pop(key, None)
            self._until.pop(key, None)
            return
        _PAIR.pack_into(m, at + self._mine_at, total, self._until[key])

    # --- StateStore ---

    async def reserve(self, rid: str, lines: Sequence[Line], amount: float, ttl_s: float) -> int | None:
        now = self._clock()
        with self._locked() as m:
            if self._deferred:
                self._apply_deferred(m, now)
            ats = [self._find(m, line.key, line.ttl_s, now) for line in lines]
            for i, at in enumerate(ats):
                if over_budget(lines[i], _F64.unpack_from(m, at + _FIRST_AT)[0] + self._reserved(m, at, now), amount):
                    return i
            expiry = now + ttl_s
            for line, at in zip(lines, ats, strict=True):
                key = line.key
                mine = self._mine.get(key)
                if mine is None:
                    mine = self._mine[key] = _Counter()
                mine.add(rid, amount, expiry)
                if expiry > self._until.get(key, 0.0):
                    self._until[key] = expiry
                self._publish(m, at, key, now)
        return None

    async def settle(self, rid: str, lines: Sequence[Line], actual: float) -> None:
        if self._settled.first(rid):
            self._defer((rid, lines, actual))

    def _defer(self, entry: tuple[str, Sequence[Line], float]) -> None:
        self._deferred.append(entry)
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self.flush)

    def flush(self) -> None:
        """Applies the deferred settles and rate additions now."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._deferred and self._map is not None:
            with self._locked() as m:
                self._apply_deferred(m, self._clock())

    def _apply_deferred(self, m: mmap.mmap, now: float) -> None:
        deferred, self._deferred = self._deferred, []
        idx = int(now // RATE_WINDOW_S)
        for rid, lines, amount in deferred:
            if not rid:  # a rate addition
                for line in lines:
                    self._add(m, self._window(m, line.key, now, idx) + _CURRENT_AT, amount)
                continue
            for line in lines:
                at = self._find(m, line.key, line.ttl_s, now)
                mine = self._mine.get(line.key)
                if mine is not None:
                    mine.drop(rid)
                self._publish(m, at, line.key, now)
                self._add(m, at + _FIRST_AT, amount)

    def seed(self, increments: Sequence[tuple[str, float, float]]) -> bool:
        """Adds settled spend (key, amount, ttl) once per table: the first worker to seed from the ledger does
        it, the others (and respawned workers) find the flag set. Returns whether this call seeded."""
        now = self._clock()
        with self._locked() as m:
            self._apply_deferred(m, now)
            if _HEADER.unpack_from(m, 0)[3]:
                return False
            for key, amount, ttl_s in increments:
                self._add(m, self._find(m, key, ttl_s, now) + _FIRST_AT, amount)
            magic, capacity, columns, _, spare = _HEADER.unpack_from(m, 0)
            _HEADER.pack_into(m, 0, magic, capacity, columns, 1, spare)
        return True

    @staticmethod
    def _add(m: mmap.mmap, at: int, amount: float) -> None:
        """Adds `amount` to the number at byte offset `at`."""
        _F64.pack_into(m, at, _F64.unpack_from(m, at)[0] + amount)

    async def levels(self, lines: Sequence[Line]) -> list[tuple[float, float]]:
        now = self._clock()
        with self._locked() as m:
            self._apply_deferred(m, now)
            ats = [self._find(m, line.key, line.ttl_s, now) for line in lines]
            return [(_F64.unpack_from(m, at + _FIRST_AT)[0], self._reserved(m, at, now)) for at in ats]

    def _window(self, m: mmap.mmap, key: str, now: float, idx: int) -> int:
        """The byte offset of rate window `key`'s slot, rolled to minute `idx` (the minute of `now`)."""
        at = self._find(m, key, 2 * RATE_WINDOW_S, now)
        idx_f, cur = _MINUTE.unpack_from(m, at + _FIRST_AT)
        if int(idx_f) != idx:  # a new minute: roll (the slot's expiry moves on with it)
            prev, cur = (cur, 0.0) if int(idx_f) == idx - 1 else (0.0, 0.0)
            _ROLL.pack_into(m, at + _EXPIRES_AT, now + 2 * RATE_WINDOW_S, float(idx), prev, cur)
        return at

    async def rate_acquire(self, lines: Sequence[Line], amount: float) -> int | None:
        now = self._clock()
        idx = int(now // RATE_WINDOW_S)
        weight = previous_minute_weight(now)  # once for every line (`sliding_level`)
        with self._locked() as m:
            if self._deferred:
                self._apply_deferred(m, now)
            ats = [self._window(m, line.key, now, idx) for line in lines]
            for i, at in enumerate(ats):
                _, prev, cur = _WINDOW.unpack_from(m, at + _FIRST_AT)
                if prev * weight + cur + amount > lines[i].limit:  # `sliding_level`, its weight hoisted
                    return i
            for at in ats:
                self._add(m, at + _CURRENT_AT, amount)
        return None

    async def rate_add(self, lines: Sequence[Line], amount: float) -> None:
        self._defer(("", lines, amount))
