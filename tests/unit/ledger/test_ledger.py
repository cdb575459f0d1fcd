"""The SQLite ledger: batched writes, flush on close, spend grouping and filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastroute.ledger import LedgerRecord, SqliteLedger


def rec(i: int, *, app: str = "a", dept: str = "d", model: str | None = "m1", cost: float = 0.01,
        ts: float = 1_000_000.0, status: int = 200, decisions: tuple[str, ...] = ()) -> LedgerRecord:
    return LedgerRecord(ts=ts + i, request_id=f"r{i}", app=app, department=dept, model=model, tier="budget",
                        status=status, prompt_tokens=10, completion_tokens=5, cost_usd=cost,
                        counterfactual_usd=cost * 3, decisions=decisions)


async def test_appends_are_visible_to_queries_and_grouped(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db", flush_interval_s=10)
    await ledger.start()
    for i in range(5):
        ledger.append(rec(i, app="a", cost=0.01))
    for i in range(3):
        ledger.append(rec(10 + i, app="b", cost=0.1, model="m2", decisions=("budget:downgrade",)))
    ledger.append(rec(20, app="b", model=None, cost=0.0, status=429, decisions=("budget:block",)))
    rows = await ledger.spend(group_by=("app",))
    by_app = {r["app"]: r for r in rows}
    assert by_app["a"]["requests"] == 5 and by_app["a"]["cost_usd"] == pytest.approx(0.05)
    assert by_app["b"]["requests"] == 4 and by_app["b"]["served"] == 3 and by_app["b"]["errors"] == 1
    assert by_app["b"]["blocked"] == 1 and by_app["b"]["downgraded"] == 3
    assert by_app["b"]["savings_usd"] == pytest.approx(0.6)
    total = await ledger.spend(group_by=())
    assert total[0]["requests"] == 9 and total[0]["prompt_tokens"] == 90
    only_b = await ledger.spend(app="b", group_by=("model",))
    assert [r["model"] for r in only_b] == [None, "m2"]
    window = await ledger.spend(since=1_000_002.0, until=1_000_011.0, group_by=())
    assert window[0]["requests"] == 4  # a:2,3,4 and b:10
    recs = await ledger.records(app="b", limit=2)
    assert [r.request_id for r in recs] == ["r20", "r12"]
    assert recs[0].decisions == ("budget:block",)
    await ledger.close()


async def test_close_flushes_queued_records_and_reopen_sees_them(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "l.db"
    ledger = SqliteLedger(path, flush_interval_s=60)
    await ledger.start()
    for i in range(100):
        ledger.append(rec(i))
    await ledger.close()
    again = SqliteLedger(path)
    await again.start()
    rows = await again.spend(group_by=("day",))
    assert sum(r["requests"] for r in rows) == 100
    assert rows[0]["day"] == "1970-01-12"
    await again.close()


async def test_unknown_group_or_filter_is_refused(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")
    await ledger.start()
    with pytest.raises(ValueError, match="group_by"):
        await ledger.spend(group_by=("prompt",))
    with pytest.raises(ValueError, match="filter"):
        await ledger.spend(prompt="x")
    await ledger.close()


async def test_an_older_database_gains_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    from fastroute.ledger.store import _SCHEMA

    conn.executescript(_SCHEMA.replace("    route_reason TEXT,\n", ""))
    conn.execute(
        "INSERT INTO requests (ts, request_id, app, department, status, prompt_tokens, completion_tokens, cost_usd,"
        " counterfactual_usd, cache_status, attempts, latency_ms, overhead_ms, stream, usage_estimated, decisions)"
        " VALUES (1, 'old', 'a', 'd', 200, 1, 1, 0.5, 1.0, 'off', 1, 1, 1, 0, 0, '[]')"
    )
    conn.commit()
    conn.close()
    ledger = SqliteLedger(path)
    await ledger.start()
    ledger.append(LedgerRecord(ts=2, request_id="new", route_reason="classifier score=0.9", cost_usd=0.25))
    recs = await ledger.records()
    assert [(r.request_id, r.route_reason) for r in recs] == [("new", "classifier score=0.9"), ("old", None)]
    await ledger.close()
