"""The ledger store: SQLite (WAL) with batched writes on one worker thread; spend and record queries.

Must not block the event loop: every SQLite call runs on the store's single executor thread, which also
serialises access to the one connection. `append` only queues; a background task writes batches.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from fastroute.ledger.record import LedgerRecord
from fastroute.sqlite_batch import SqliteBatchWriter

log = logging.getLogger("fastroute.ledger")

When = float | datetime | None

# group_by name -> SQL expression
GROUP_BY: dict[str, str] = {
    "app": "app",
    "department": "department",
    "key_id": "key_id",
    "tier": "tier",
    "model": "model",
    "provider": "provider",
    "status": "status",
    "cache_status": "cache_status",
    "hour": "strftime('%Y-%m-%dT%H:00:00Z', ts, 'unixepoch')",
    "day": "date(ts, 'unixepoch')",
    "month": "strftime('%Y-%m', ts, 'unixepoch')",
}
FILTERS = ("app", "department", "key_id", "tier", "model")

_COLUMNS = list(LedgerRecord._fields)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    app TEXT NOT NULL,
    department TEXT NOT NULL,
    key_id TEXT,
    tier TEXT,
    route_reason TEXT,
    model TEXT,
    provider TEXT,
    status INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    counterfactual_usd REAL NOT NULL,
    cache_status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    overhead_ms REAL NOT NULL,
    ttft_ms REAL,
    stream INTEGER NOT NULL,
    usage_estimated INTEGER NOT NULL,
    fallback_reason TEXT,
    error_code TEXT,
    decisions TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE INDEX IF NOT EXISTS requests_app_ts ON requests (app, ts);
CREATE INDEX IF NOT EXISTS requests_dept_ts ON requests (department, ts);
"""
_ADDED_COLUMNS = (("route_reason", "TEXT"),)
_INSERT = f"INSERT INTO requests ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"


class Ledger(Protocol):
    """What the rest of fastroute uses; SQLite is the embedded default."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def append(self, record: LedgerRecord) -> None: ...

    async def flush(self) -> None: ...

    async def spend(
        self,
        *,
        app: str | None = None,
        department: str | None = None,
        since: When = None,
        until: When = None,
        group_by: Sequence[str] = ("app",),
        **filters: str,
    ) -> list[dict[str, Any]]: ...

    async def records(
        self,
        *,
        app: str | None = None,
        department: str | None = None,
        since: When = None,
        until: When = None,
        limit: int = 100,
        **filters: str,
    ) -> list[LedgerRecord]: ...


def _epoch(value: When) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _where(
    app: str | None, department: str | None, since: When, until: When, filters: dict[str, str]
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for name, value in (("app", app), ("department", department), *filters.items()):
        if value is None:
            continue
        if name not in FILTERS:
            raise ValueError(f"unknown ledger filter {name!r} (use {', '.join(FILTERS)})")
        clauses.append(f"{name} = ?")
        params.append(value)
    start, end = _epoch(since), _epoch(until)
    if start is not None:
        clauses.append("ts >= ?")
        params.append(start)
    if end is not None:
        clauses.append("ts < ?")
        params.append(end)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _spend_sql(group_by: Sequence[str], where: str) -> str:
    for g in group_by:
        if g not in GROUP_BY:
            raise ValueError(f"unknown group_by {g!r} (use {', '.join(GROUP_BY)})")
    keys = [f"{GROUP_BY[g]} AS {g}" for g in group_by]
    aggregates = [
        "COUNT(*) AS requests",
        "SUM(CASE WHEN model IS NOT NULL AND status < 400 THEN 1 ELSE 0 END) AS served",
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors",
        "COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens",
        "COALESCE(SUM(completion_tokens), 0) AS completion_tokens",
        "COALESCE(SUM(cost_usd), 0.0) AS cost_usd",
        "COALESCE(SUM(counterfactual_usd), 0.0) AS counterfactual_usd",
        "SUM(CASE WHEN cache_status LIKE 'hit%' THEN 1 ELSE 0 END) AS cache_hits",
        "SUM(CASE WHEN decisions LIKE '%block%' THEN 1 ELSE 0 END) AS blocked",
        "SUM(CASE WHEN decisions LIKE '%downgrade%' THEN 1 ELSE 0 END) AS downgraded",
        "SUM(CASE WHEN decisions LIKE '%redact%' THEN 1 ELSE 0 END) AS redacted",
    ]
    sql = f"SELECT {', '.join(keys + aggregates)} FROM requests{where}"
    if group_by:
        order = ", ".join(str(i + 1) for i in range(len(group_by)))
        sql += f" GROUP BY {order} ORDER BY {order}"
    return sql


# The record's fields are the columns, in order; only the flags and the decisions need converting.
_STREAM, _ESTIMATED, _DECISIONS = (_COLUMNS.index(c) for c in ("stream", "usage_estimated", "decisions"))
assert (_STREAM + 1, _DECISIONS) == (_ESTIMATED, len(_COLUMNS) - 1)


def _row(record: LedgerRecord) -> tuple[Any, ...]:
    return (
        *record[:_STREAM],
        int(record.stream),
        int(record.usage_estimated),
        *record[_ESTIMATED + 1 : _DECISIONS],
        orjson.dumps(record.decisions).decode(),
    )


def _record(row: sqlite3.Row) -> LedgerRecord:
    data = {name: row[name] for name in _COLUMNS}
    data["decisions"] = tuple(orjson.loads(data["decisions"]))
    data["stream"] = bool(data["stream"])
    data["usage_estimated"] = bool(data["usage_estimated"])
    return LedgerRecord(**data)


class SqliteLedger(SqliteBatchWriter):
    """SQLite in WAL mode at `path`; appends are batched every `flush_interval_s` or `batch_size` records."""

    def __init__(self, path: Path, *, flush_interval_s: float = 0.2, batch_size: int = 512) -> None:
        super().__init__(path, name="ledger", flush_interval_s=flush_interval_s)
        self.batch_size = batch_size

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.executescript(_SCHEMA)
        # Columns added after a database was created are added in place (older rows read NULL).
        have = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
        for name, sql_type in _ADDED_COLUMNS:
            if name not in have:
                try:
                    conn.execute(f"ALTER TABLE requests ADD COLUMN {name} {sql_type}")
                except sqlite3.OperationalError as e:  # another worker process added it just now
                    if "duplicate column" not in str(e):
                        raise

    def append(self, record: LedgerRecord) -> None:
        """Queues a record; it reaches disk within `flush_interval_s` (or at once when a batch is full)."""
        self._queue(_INSERT, _row(record))
        if len(self._pending) >= self.batch_size:
            self._wake_writer()

    async def spend(
        self,
        *,
        app: str | None = None,
        department: str | None = None,
        since: When = None,
        until: When = None,
        group_by: Sequence[str] = ("app",),
        **filters: str,
    ) -> list[dict[str, Any]]:
        """Requests, tokens, cost, counterfactual cost and policy outcomes, grouped by `group_by`."""
        where, params = _where(app, department, since, until, filters)
        sql = _spend_sql(tuple(group_by), where)
        await self.flush()
        rows: list[sqlite3.Row] = await self._run(self._query, sql, params)
        out = []
        for row in rows:
            item = dict(row)
            item["savings_usd"] = item["counterfactual_usd"] - item["cost_usd"]
            out.append(item)
        return [o for o in out if o["requests"]]

    async def records(
        self,
        *,
        app: str | None = None,
        department: str | None = None,
        since: When = None,
        until: When = None,
        limit: int = 100,
        **filters: str,
    ) -> list[LedgerRecord]:
        """The newest matching records first (at most `limit`)."""
        where, params = _where(app, department, since, until, filters)
        sql = f"SELECT * FROM requests{where} ORDER BY ts DESC, id DESC LIMIT ?"
        await self.flush()
        rows: list[sqlite3.Row] = await self._run(self._query, sql, [*params, int(limit)])
        return [_record(r) for r in rows]

    def _query(self, sql: str, params: list[Any]) -> list[sqlite3.Row]:
        assert self._conn is not None, "ledger not started"
        return self._conn.execute(sql, params).fetchall()
