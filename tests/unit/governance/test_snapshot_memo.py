"""`SnapshotMemo`: kept per snapshot (by identity) and period (by value), bounded."""

from __future__ import annotations

from fastroute.governance.snapshot_memo import SnapshotMemo


class Snapshot:
    """Stands in for a policy object (compared by identity)."""


def test_a_value_is_kept_until_the_snapshot_or_the_period_changes() -> None:
    memo: SnapshotMemo[str, int] = SnapshotMemo()
    first, reloaded = Snapshot(), Snapshot()
    assert memo.get(first, "app") is None
    assert memo.put("app", 1) == 1
    assert memo.get(first, "app") == 1
    assert memo.get(reloaded, "app") is None  # a reload: nothing of the old snapshot is served
    memo.put("app", 2)
    assert memo.get(reloaded, "app") == 2
    assert memo.get(reloaded, "app", period=1) is None  # a new day (budget lines)
    memo.put("app", 3)
    assert memo.get(reloaded, "app", period=1) == 3
    assert memo.get(first, "app", period=1) is None


def test_it_never_holds_more_than_its_size() -> None:
    memo: SnapshotMemo[int, int] = SnapshotMemo(max_size=4)
    snapshot = Snapshot()
    for i in range(20):
        assert memo.get(snapshot, i) is None
        memo.put(i, i)
        assert memo.get(snapshot, i) == i
        assert len(memo._values) <= 4
