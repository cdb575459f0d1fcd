"""The quality store: routing records, feedback, shadow comparisons and recalibration events in SQLite.

Must not block the event loop: every SQLite call runs on the store's one executor thread (which also
serialises access to its connection); writes are queued and batched. Holds no prompt or answer text,
only names, scores and the feedback comment the client chose to send.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from fastroute.sqlite_batch import SqliteBatchWriter

log = logging.getLogger("fastroute.quality")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS routes (
    request_id TEXT NOT NULL,
    app TEXT NOT NULL,
    ts REAL NOT NULL,
    department TEXT NOT NULL,
    key_id TEXT,
    tier TEXT,
    natural_tier TEXT,
    score REAL,
    reason TEXT,
    model TEXT,
    feature_version INTEGER,
    status INTEGER NOT NULL,
    feedback_score REAL,
    feedback_ts REAL,
    feedback_comment TEXT,
    PRIMARY KEY (request_id, app)
);
CREATE INDEX IF NOT EXISTS routes_ts ON routes (ts);
CREATE TABLE IF NOT EXISTS shadow_results (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    app TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    reference_model TEXT NOT NULL,
    judge TEXT NOT NULL,
    agree INTEGER NOT NULL,
    score REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS shadow_results_ts ON shadow_results (ts);
CREATE TABLE IF NOT EXISTS shadow_spend (day TEXT PRIMARY KEY, usd REAL NOT NULL);
CREATE TABLE IF NOT EXISTS recalibrations (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    app TEXT NOT NULL,
    tier TEXT NOT NULL,
    action TEXT NOT NULL,
    signal TEXT NOT NULL,
    n INTEGER NOT NULL,
    rate REAL NOT NULL,
    ci_low REAL NOT NULL,
    ci_high REAL NOT NULL,
    target REAL NOT NULL
);
"""

_ROUTE_COLUMNS = (
    "request_id app ts department key_id tier natural_tier score reason model feature_version status"
).split()
_INSERT_ROUTE = (
    f"INSERT OR REPLACE INTO routes ({', '.join(_ROUTE_COLUMNS)}) VALUES ({', '.join('?' for _ in _ROUTE_COLUMNS)})"
)
_INSERT_SHADOW = (
    "INSERT INTO shadow_results (ts, request_id, app, tier, model, reference_model, judge, agree, score) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ADD_SPEND = "INSERT INTO shadow_spend (day, usd) VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET usd = usd + excluded.usd"
_INSERT_EVENT = (
    "INSERT INTO recalibrations (ts, app, tier, action, signal, n, rate, ci_low, ci_high, target) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SET_FEEDBACK = (
    "UPDATE routes SET feedback_score = ?, feedback_ts = ?, feedback_comment = ? WHERE request_id = ? AND app = ?"
)


class RouteRecord(NamedTuple):
    """How one request was routed and served: what feedback and shadow outcomes attach to.

    A named tuple (one is built per request; 3x cheaper than a frozen dataclass) whose first fields are the
    `routes` table's insert columns, in order.
    """

    request_id: str
    app: str
    ts: float
    department: str = "default"
    key_id: str | None = None
    tier: str | None = None
    natural_tier: str | None = None
    score: float | None = None
    reason: str | None = None
    model: str | None = None
    feature_version: int | None = None
    status: int = 200
    feedback_score: float | None = None
    feedback_ts: float | None = None

    def row(self) -> tuple[Any, ...]:
        return self[: len(_ROUTE_COLUMNS)]


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """One comparison of a tier's answer with the frontier's."""

    ts: float
    request_id: str
    app: str
    tier: str
    model: str
    reference_model: str
    judge: str
    agree: bool
    score: float

    def row(self) -> tuple[Any, ...]:
        return (
            self.ts,
            self.request_id,
            self.app,
            self.tier,
            self.model,
            self.reference_model,
            self.judge,
            int(self.agree),
            self.score,
        )


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class QualityStore(SqliteBatchWriter):
    """SQLite (WAL) at `path`. `start()` before use, `close()` flushes what is queued."""

    def __init__(
        self,
        path: Path,
        *,
        retention_days: float = 30.0,
        max_records: int = 1_000_000,
        flush_interval_s: float = 0.2,
        prune_interval_s: float = 300.0,
    ) -> None:
        super().__init__(path, name="quality", flush_interval_s=flush_interval_s)
        self.retention_s = retention_days * 86400.0
        self.max_records = max_records
        self.prune_interval_s = prune_interval_s
        self._next_prune = 0.0

    async def start(self) -> None:
        if self._executor is not None:
            return
        await super().start()
        await self.prune()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.executescript(_SCHEMA)

    async def _after_flush(self) -> None:
        if time.time() >= self._next_prune:
            await self.prune()

    # writes: queued, batched on the writer thread

    def add_route(self, record: RouteRecord) -> None:
        self._queue(_INSERT_ROUTE, record.row())

    def add_shadow(self, result: ShadowResult) -> None:
        self._queue(_INSERT_SHADOW, result.row())

    def add_spend(self, usd: float, ts: float) -> None:
        if usd > 0:
            self._queue(_ADD_SPEND, (utc_day(ts), usd))

    def add_event(self, values: tuple[Any, ...]) -> None:
        self._queue(_INSERT_EVENT, values)

    async def set_feedback(self, request_id: str, app: str, score: float, comment: str | None) -> None:
        self._queue(_SET_FEEDBACK, (score, time.time(), comment, request_id, app))
        await self.flush()

    async def prune(self, now: float | None = None) -> int:
        """Deletes records past retention and the oldest beyond `max_records`; returns routes deleted."""
        at = time.time() if now is None else now
        self._next_prune = at + self.prune_interval_s
        deleted: int = await self._run(self._prune, at - self.retention_s)
        return deleted

    def _prune(self, cutoff: float) -> int:
        assert self._conn is not None
        with self._conn:
            deleted = self._conn.execute("DELETE FROM routes WHERE ts < ?", (cutoff,)).rowcount
            self._conn.execute("DELETE FROM shadow_results WHERE ts < ?", (cutoff,))
            self._conn.execute("DELETE FROM shadow_spend WHERE day < ?", (utc_day(cutoff),))
            (count,) = self._conn.execute("SELECT COUNT(*) FROM routes").fetchone()
            if count > self.max_records:
                deleted += self._conn.execute(
                    "DELETE FROM routes WHERE rowid IN (SELECT rowid FROM routes ORDER BY ts LIMIT ?)",
                    (count - self.max_records,),
                ).rowcount
            (count,) = self._conn.execute("SELECT COUNT(*) FROM shadow_results").fetchone()
            if count > self.max_records:
                self._conn.execute(
                    "DELETE FROM shadow_results WHERE id IN (SELECT id FROM shadow_results ORDER BY ts LIMIT ?)",
                    (count - self.max_records,),
                )
        return int(deleted)

    # reads: flush first, so what was queued before a query is visible to it

    async def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        await self.flush()

        def run() -> list[dict[str, Any]]:
            assert self._conn is not None, "quality store not started"
            return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

        rows: list[dict[str, Any]] = await self._run(run)
        return rows

    async def routes_for(self, request_id: str) -> list[RouteRecord]:
        """Every routing record with this request id (one per tenant that used the id)."""
        cols = ", ".join([*_ROUTE_COLUMNS, "feedback_score", "feedback_ts"])
        rows = await self._query(f"SELECT {cols} FROM routes WHERE request_id = ?", (request_id,))
        return [RouteRecord(**r) for r in rows]

    async def spent_on(self, day: str) -> float:
        rows = await self._query("SELECT usd FROM shadow_spend WHERE day = ?", (day,))
        return float(rows[0]["usd"]) if rows else 0.0

    async def events(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Recalibration events, oldest first (the last `limit`)."""
        rows = await self._query("SELECT * FROM recalibrations ORDER BY id DESC LIMIT ?", (int(limit),))
        return rows[::-1]

    async def events_after(self, last_id: int) -> list[dict[str, Any]]:
        """Recalibration events with an id above `last_id`, oldest first (other processes' moves too)."""
        return await self._query("SELECT * FROM recalibrations WHERE id > ? ORDER BY id", (int(last_id),))

    async def tier_quality(self, since: float | None = None, app: str | None = None) -> list[dict[str, Any]]:
        """Per (app, tier, model): requests, feedback count / positives / mean, shadow count / agreements."""
        where: list[str] = ["ts >= ?"]
        params: list[Any] = [since if since is not None else 0.0]
        if app is not None:
            where.append("app = ?")
            params.append(app)
        clause = " AND ".join(where)
        routes = await self._query(
            "SELECT app, tier, model, COUNT(*) AS requests, COUNT(feedback_score) AS feedback_n, "
            "COALESCE(SUM(CASE WHEN feedback_score >= 0.5 THEN 1 ELSE 0 END), 0) AS feedback_positive, "
            "AVG(feedback_score) AS feedback_mean "
            f"FROM routes WHERE {clause} AND tier IS NOT NULL AND model IS NOT NULL GROUP BY app, tier, model",
            tuple(params),
        )
        shadow = await self._query(
            "SELECT app, tier, model, COUNT(*) AS shadow_n, SUM(agree) AS shadow_agree, AVG(score) AS shadow_score "
            f"FROM shadow_results WHERE {clause} GROUP BY app, tier, model",
            tuple(params),
        )
        merged: dict[tuple[str, str, str], dict[str, Any]] = {}
        empty = {
            "requests": 0,
            "feedback_n": 0,
            "feedback_positive": 0,
            "feedback_mean": None,
            "shadow_n": 0,
            "shadow_agree": 0,
            "shadow_score": None,
        }
        for row in [*routes, *shadow]:
            key = (row["app"], row["tier"], row["model"])
            merged.setdefault(key, {"app": key[0], "tier": key[1], "model": key[2], **empty}).update(
                {k: v for k, v in row.items() if k not in ("app", "tier", "model")}
            )
        return [merged[k] for k in sorted(merged)]

    async def labelled_since(self, since: float) -> list[dict[str, Any]]:
        """Shadow comparisons since `since` (no text): what the labels file rows are joined with."""
        return await self._query("SELECT * FROM shadow_results WHERE ts >= ? ORDER BY ts", (since,))
