"""SqliteBatchWriter: batches land in order, exactly once even when the flushing caller is cancelled; several
processes may open one new file at once (FASTROUTE_WORKERS); in idle mode small periodic batches go to an
idle-priority thread, large, old or awaited ones do not, and the connection serves one thread at a time."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from fastroute.sqlite_batch import IDLE_MAX_AGE_S, IDLE_MAX_STATEMENTS, SqliteBatchWriter


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


def _queue_notes(store: Notes, start: int, count: int) -> None:
    for i in range(start, start + count):
        store._queue("INSERT INTO notes (id, text) VALUES (?, ?)", (i, "x"))


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes")
async def test_idle_mode_writes_small_periodic_batches_on_an_idle_priority_thread(tmp_path: Path) -> None:
    store = Notes(tmp_path / "n.sqlite3", name="notes", flush_interval_s=60, idle=True)
    await store.start()
    assert store._idle_executor is not None
    policy = await asyncio.get_running_loop().run_in_executor(store._idle_executor, os.sched_getscheduler, 0)
    assert policy == os.SCHED_IDLE
    _queue_notes(store, 0, 10)
    await store.flush(urgent=False)
    assert (store.written, store.written_idle) == (10, 10)
    await store.close()
    assert len(_rows(tmp_path / "n.sqlite3")[0]) == 10


async def test_idle_mode_bounds_the_backlog_and_never_idles_an_awaited_flush(tmp_path: Path) -> None:
    store = Notes(tmp_path / "n.sqlite3", name="notes", flush_interval_s=60, idle=True)
    await store.start()
    _queue_notes(store, 0, IDLE_MAX_STATEMENTS)  # too many for the idle thread
    await store.flush(urgent=False)
    assert (store.written, store.written_idle) == (IDLE_MAX_STATEMENTS, 0)
    _queue_notes(store, 1000, 1)
    store._pending_since = time.monotonic() - IDLE_MAX_AGE_S  # waited too long
    await store.flush(urgent=False)
    assert store.written_idle == 0
    _queue_notes(store, 2000, 1)
    await store.flush()  # a caller waits (a query, shutdown)
    assert store.written_idle == 0
    _queue_notes(store, 3000, 1)
    await store.flush(urgent=False)  # small and fresh: idle
    assert store.written_idle == 1
    await store.close()
    assert len(_rows(tmp_path / "n.sqlite3")[0]) == IDLE_MAX_STATEMENTS + 3


async def test_default_mode_has_no_idle_thread(tmp_path: Path) -> None:
    store = Notes(tmp_path / "n.sqlite3", name="notes", flush_interval_s=60)
    await store.start()
    _queue_notes(store, 0, 3)
    await store.flush(urgent=False)
    assert (store._idle_executor, store.written, store.written_idle) == (None, 3, 0)
    await store.close()


async def test_a_query_waits_for_the_idle_batch_in_flight(tmp_path: Path) -> None:
    # Two threads share the connection in idle mode; a query must never run inside the other's transaction.
    store = Notes(tmp_path / "n.sqlite3", name="notes", flush_interval_s=60, idle=True)
    await store.start()
    assert store._idle_executor is not None and store._conn is not None
    conn = store._conn
    release = threading.Event()
    blocker = store._idle_executor.submit(release.wait, 10)  # holds the idle thread: the batch waits behind it
    _queue_notes(store, 0, 5)
    write = asyncio.create_task(store.flush(urgent=False))
    await asyncio.sleep(0.05)
    query = asyncio.create_task(store._run(lambda: conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0]))
    await asyncio.sleep(0.1)
    assert not write.done() and not query.done()
    release.set()
    await write
    assert await query == 5  # it ran after the batch committed
    assert blocker.result() is True
    await store.close()


async def test_closing_waits_for_an_idle_batch_whose_flush_was_cancelled(tmp_path: Path) -> None:
    # Shutdown cancels the periodic writer mid-flush; the batch still runs on the idle thread, and closing the
    # connection under it crashed the process before close() waited for it.
    store = Notes(tmp_path / "n.sqlite3", name="notes", flush_interval_s=60, idle=True)
    await store.start()
    assert store._idle_executor is not None
    release = threading.Event()
    store._idle_executor.submit(release.wait, 10)
    _queue_notes(store, 0, 50)
    flush = asyncio.create_task(store.flush(urgent=False))
    await asyncio.sleep(0.05)
    flush.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flush
    closing = asyncio.create_task(store.close())
    await asyncio.sleep(0.1)
    assert not closing.done()  # waits for the batch in flight
    release.set()
    await closing
    assert len(_rows(tmp_path / "n.sqlite3")[0]) == 50
