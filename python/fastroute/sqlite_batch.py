"""`SqliteBatchWriter`: a SQLite file (WAL) owned by one worker thread, written in batches off the event loop.

Owns the connection, the queue of statements and the writer task; what the tables mean is the subclass's
business (`_prepare` creates or migrates its schema). Statements are queued from the event loop, written every
`flush_interval_s` (or at once after `_wake_writer()`), each batch in one transaction. A batch being written
when the caller is cancelled (shutdown) still lands, exactly once; a batch that fails to write is requeued.
Must not import aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from pathlib import Path
from typing import Any

from fastroute.background import stop_task

log = logging.getLogger("fastroute.sqlite")

Statement = tuple[str, tuple[Any, ...]]
OPEN_TIMEOUT_S = 30.0  # how long opening waits for other processes opening the same file


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY ("database is locked") or SQLITE_LOCKED, including their extended codes."""
    return error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SqliteBatchWriter:
    def __init__(self, path: Path, *, name: str, flush_interval_s: float = 0.2) -> None:
        self.path = path
        self.name = name
        self.flush_interval_s = flush_interval_s
        self.written = 0  # statements written so far
        self._pending: list[Statement] = []
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Creates or migrates the schema (on the worker thread, once per start)."""

    async def _after_flush(self) -> None:
        """Periodic upkeep run by the writer task after each flush (e.g. pruning)."""

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fastroute-{self.name}")
        await self._run(self._open)
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._writer = asyncio.create_task(self._write_loop(), name=f"{self.name}-writer")

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        # Several worker processes open one file at once. Switching a new file to WAL needs it exclusively
        # and SQLite answers "database is locked" at once (no busy wait), so retry until the others are done.
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                self._prepare(conn)
                break
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or time.monotonic() > deadline:
                    conn.close()
                    raise
                if conn.in_transaction:
                    conn.rollback()
                time.sleep(0.01)
        self._conn = conn

    async def _run(self, fn: Any, *args: Any) -> Any:
        assert self._executor is not None, f"{self.name} store not started"
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _queue(self, sql: str, params: tuple[Any, ...]) -> None:
        self._pending.append((sql, params))

    def _wake_writer(self) -> None:
        self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancellation close() sends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                await self._after_flush()
            except Exception:
                log.exception("%s store: writing a batch failed; it stays queued", self.name)

    async def flush(self) -> None:
        """Writes everything queued so far (in one transaction)."""
        async with self._write_lock:
            if not self._pending or self._conn is None:
                return
            batch, self._pending = self._pending, []
            # The connection is bound now: close() may drop `self._conn` while this write is still queued.
            write = asyncio.get_running_loop().run_in_executor(self._executor, self._write, self._conn, batch)
            try:
                # Shielded: if the caller is cancelled (shutdown), the batch still lands, exactly once.
                await asyncio.shield(write)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._pending[:0] = batch
                raise
            self.written += len(batch)

    @staticmethod
    def _write(conn: sqlite3.Connection, batch: list[Statement]) -> None:
        with conn:
            conn.execute("BEGIN")
            for sql, group in groupby(batch, key=lambda s: s[0]):
                conn.executemany(sql, [params for _, params in group])

    async def close(self) -> None:
        """Stops the writer and flushes what is queued, so a restart loses nothing."""
        await stop_task(self._writer)
        self._writer = None
        if self._executor is None:
            return
        try:
            await self.flush()
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                await self._run(conn.close)
            self._executor.shutdown(wait=True)
            self._executor = None
