"""`SnapshotMemo`: values a stage works out once per policy snapshot (per application, department...), by key.

Pure (no I/O). The snapshot is compared by identity: a reload makes a new policy object, so it applies at
once. An optional `period` (e.g. the UTC day budget lines are built for) is compared by value. Either change
starts the memo afresh. Ad-hoc application names must not grow it forever: when it holds `max_size`
values, it is emptied before the next one is kept.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

MEMO_MAX = 10_000


class SnapshotMemo(Generic[K, V]):
    """`value = memo.get(snapshot, key)`; on None, `value = memo.put(key, build())`."""

    __slots__ = ("_period", "_snapshot", "_values", "max_size")

    def __init__(self, max_size: int = MEMO_MAX) -> None:
        self.max_size = max_size
        self._snapshot: object = None
        self._period = 0
        self._values: dict[K, V] = {}

    def get(self, snapshot: object, key: K, period: int = 0) -> V | None:
        """The value kept for `key` under this snapshot and period, or None (then `put` it)."""
        if snapshot is not self._snapshot or period != self._period:
            self._snapshot, self._period, self._values = snapshot, period, {}
            return None
        return self._values.get(key)

    def put(self, key: K, value: V) -> V:
        """Keeps `value` for `key` under the snapshot of the last `get`; returns it."""
        values = self._values
        if len(values) >= self.max_size:
            values.clear()
        values[key] = value
        return value
