"""The quality store (records, feedback, aggregates, retention) and the labels file."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from fastroute.quality.labels import compact, export_labels, label_row, labels_path, read_labels
from fastroute.quality.store import QualityStore, RouteRecord, ShadowResult, utc_day


async def test_records_feedback_and_per_tier_rates(tmp_path: Path) -> None:
    store = QualityStore(tmp_path / "q.sqlite3")
    await store.start()
    try:
        now = time.time()
        for i in range(4):
            store.add_route(RouteRecord(f"r{i}", "a", now, tier="budget", natural_tier="budget", model="m1"))
        store.add_route(RouteRecord("r0", "b", now, tier="mid", model="m2"))  # same id, another tenant
        for i, agree in enumerate((True, True, False)):
            store.add_shadow(ShadowResult(now, f"r{i}", "a", "budget", "m1", "ref", "similarity", agree, 0.5))
        await store.set_feedback("r0", "a", 1.0, "nice")
        await store.set_feedback("r1", "a", 0.0, None)
        assert {r.app for r in await store.routes_for("r0")} == {"a", "b"}
        assert await store.routes_for("nope") == []
        (mine,) = [r for r in await store.routes_for("r0") if r.app == "a"]
        assert mine.feedback_score == 1.0 and mine.tier == "budget"
        rows = {(r["app"], r["tier"]): r for r in await store.tier_quality()}
        a = rows[("a", "budget")]
        assert (a["requests"], a["feedback_n"], a["feedback_positive"], a["shadow_n"], a["shadow_agree"]) == (
            4,
            2,
            1,
            3,
            2,
        )
        assert rows[("b", "mid")]["shadow_n"] == 0
        assert [r["app"] for r in await store.tier_quality(app="b")] == ["b"]
        assert await store.tier_quality(since=now + 10) == []
        store.add_spend(0.25, now)
        store.add_spend(0.5, now)
        assert await store.spent_on(utc_day(now)) == pytest.approx(0.75)
    finally:
        await store.close()
    # durable: a new store on the same file sees everything
    again = QualityStore(tmp_path / "q.sqlite3")
    await again.start()
    try:
        assert len(await again.routes_for("r3")) == 1
    finally:
        await again.close()


async def test_retention_and_row_cap(tmp_path: Path) -> None:
    store = QualityStore(tmp_path / "q.sqlite3", retention_days=1, max_records=100)
    await store.start()
    try:
        now = time.time()
        store.add_route(RouteRecord("old", "a", now - 3 * 86400))
        store.add_shadow(ShadowResult(now - 3 * 86400, "old", "a", "budget", "m", "r", "j", True, 1.0))
        for i in range(120):
            store.add_route(RouteRecord(f"n{i}", "a", now - 1000 + i))
        await store.flush()
        deleted = await store.prune(now)
        assert deleted == 1 + 20
        assert await store.routes_for("old") == []
        assert await store.routes_for("n0") == []  # the oldest beyond the cap
        assert len(await store.routes_for("n119")) == 1
        assert await store.tier_quality(since=0) == []  # no tiered rows left, and the old shadow row is gone
    finally:
        await store.close()


def row(prompt: str, agree: bool, tier: str = "budget", app: str = "a", ts: float = 1000.0) -> dict[str, object]:
    return label_row(
        [{"role": "user", "content": prompt}],
        agree=agree,
        agreement=0.9 if agree else 0.1,
        app=app,
        tier=tier,
        model="m",
        reference_model="ref",
        judge="similarity",
        request_id="r",
        feature_version=1,
        ts=ts,
    )


def test_label_rows_follow_the_routing_schema() -> None:
    r = row("what is 2+2", False)
    assert (r["prompt"], r["strong"], r["weak"], r["split"], r["category"]) == ("what is 2+2", 1, 0, "train", "a")
    multi = label_row(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        agree=True, agreement=1.0, app="a", tier="mid", model="m", reference_model="r", judge="j",
        request_id="x", feature_version=None, ts=1.0,
    )  # fmt: skip
    assert "prompt" not in multi and [m["role"] for m in multi["messages"]] == ["system", "user"]


def test_export_keeps_the_latest_outcome_per_prompt_and_filters(tmp_path: Path) -> None:
    path = labels_path(tmp_path)
    path.parent.mkdir(parents=True)
    rows = [row("p1", False, ts=1), row("p1", True, ts=2), row("p2", False, ts=3), row("p3", False, tier="mid", ts=4),
            row("p4", True, app="b", ts=5)]  # fmt: skip
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + b'{"cut by a cra')
    out = tmp_path / "out.jsonl"
    assert export_labels(tmp_path, out) == 3  # p1 (latest), p2, p4; the mid row is not the router's pair
    got = {r["prompt"]: r["weak"] for r in read_labels(out)}
    assert got == {"p1": 1, "p2": 0, "p4": 1}
    assert export_labels(tmp_path, out, apps=["b"]) == 1
    assert export_labels(tmp_path, out, since=2.5, tiers=("budget", "mid")) == 3


def test_compact_drops_expired_and_excess_rows(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    now = 10 * 86400.0
    rows = [row(f"p{i}", True, ts=now - 5 * 86400 + i * 86400) for i in range(5)]  # ages 5,4,3,2,1 days
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    assert compact(path, retention_days=3.5, max_rows=2, now=now) == 2
    assert [r["prompt"] for r in read_labels(path)] == ["p3", "p4"]
    assert compact(tmp_path / "missing.jsonl", retention_days=1, max_rows=1) == 0


def test_label_file_appends_and_compacts_under_one_lock(tmp_path: Path) -> None:
    from fastroute.quality.labels import LabelFile

    f = LabelFile(tmp_path / "q" / "labels.jsonl", retention_days=30, max_rows=3)
    now = time.time()
    f.append([row(f"p{i}", True, ts=now) for i in range(5)])
    f.append([])
    assert f.compact(now) == 3
    assert [r["prompt"] for r in read_labels(f.path)] == ["p2", "p3", "p4"]


def test_route_record_row_is_the_insert_columns_in_order() -> None:
    from fastroute.quality.store import _ROUTE_COLUMNS

    record = RouteRecord("r1", "a", 1.0, department="d", tier="mid", score=0.5, status=201, feedback_score=1.0)
    assert dict(zip(_ROUTE_COLUMNS, record.row(), strict=True)) == {c: getattr(record, c) for c in _ROUTE_COLUMNS}
