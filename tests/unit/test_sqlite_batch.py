"""SqliteBatchWriter: batches land in order, exactly once even when the flushing caller is cancelled."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from fastroute.sqlite_batch import SqliteBatchWriter

pytestmark = pytest.mark.asyncio


class Notes(SqliteBatchWriter):
    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("CREATE TABLE IF NOT EXISTS tags (note INTEGER, tag TEXT)")


def _rows(path: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    with sqlite3.connect(path) as conn:
        return (
            conn.execute("SELECT id, text FROM notes ORDER BY id").fetchall(),
            conn.execute("SELECT note, tag FROM tags ORDER BY rowid").fetchall(),
        )


async def test_interleaved_statements_keep_their_order(tmp_path: Path) -> None:
    store = Notes(tmp_path / "n.sqlite3", name="notes", flush_interval_s=60)
    await store.start()
    for i in range(3):
        store._queue("INSERT INTO notes (id, text) VALUES (?, ?)", (i, f"n{i}"))
        store._queue("INSERT INTO tags (note, tag) VALUES (?, ?)", (i, "a"))
        store._queue("INSERT INTO tags (note, tag) VALUES (?, ?)", (i, "b"))
    await store.close()
    notes, tags = _rows(tmp_path / "n.sqlite3")
    assert notes == [(0, "n0"), (1, "n1"), (2, "n2")]
    assert tags == [(0, "a"), (0, "b"), (1, "a"), (1, "b"), (2, "a"), (2, "b")]
    assert store.written == 9


async def test_cancelled_flush_still_lands_exactly_once(tmp_path: Path) -> None:
    store = Notes(tmp_path / "n.sqlite3", name="notes", flush_interval_s=60)
    await store.start()
    for i in range(500):
        store._queue("INSERT INTO notes (id, text) VALUES (?, ?)", (i, "x"))
    task = asyncio.create_task(store.flush())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await store.close()  # a requeued batch would fail here on the primary key
    assert len(_rows(tmp_path / "n.sqlite3")[0]) == 500


async def test_failed_batch_is_requeued(tmp_path: Path) -> None:
    store = Notes(tmp_path / "n.sqlite3", name="notes", flush_interval_s=60)
    await store.start()
    store._queue("INSERT INTO missing_table VALUES (?)", (1,))
    with pytest.raises(sqlite3.OperationalError):
        await store.flush()
    assert len(store._pending) == 1
    store._pending.clear()
    await store.close()
