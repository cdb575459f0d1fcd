"""SqliteBatchWriter: batches land in order, exactly once even when the flushing caller is cancelled; several
processes may open one new file at once (FASTROUTE_WORKERS)."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
import sqlite3
from pathlib import Path

import pytest

from fastroute.sqlite_batch import SqliteBatchWriter


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


def _open_and_write(path: Path, barrier: multiprocessing.synchronize.Barrier, index: int) -> None:
    async def main() -> None:
        store = Notes(path, name="notes", flush_interval_s=60)
        barrier.wait()
        await store.start()
        store._queue("INSERT INTO notes (id, text) VALUES (?, ?)", (index, "x"))
        await store.close()

    asyncio.run(main())


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_processes_opening_one_new_file_at_once_all_start(tmp_path: Path) -> None:
    # Worker processes starting together each switch the same new file to WAL; SQLite answers the losers
    # "database is locked" without waiting, which once stopped a worker from starting.
    context = multiprocessing.get_context("fork")
    for attempt in range(10):
        path = tmp_path / f"n{attempt}.sqlite3"
        barrier = context.Barrier(4)
        procs = [context.Process(target=_open_and_write, args=(path, barrier, i)) for i in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [proc.exitcode for proc in procs] == [0] * 4, f"attempt {attempt}"
        assert sorted(row[0] for row in _rows(path)[0]) == [0, 1, 2, 3]
