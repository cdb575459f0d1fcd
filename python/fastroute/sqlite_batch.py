"""`SqliteBatchWriter`: a SQLite file (WAL) owned by one worker thread, written in batches off the event loop.

Owns the connection, the queue of statements and the writer task; what the tables mean is the subclass's
business (`_prepare` creates or migrates its schema). Statements are queued from the event loop, written every
`flush_interval_s` (or at once after `_wake_writer()`), each batch in one transaction. A batch being written
when the caller is cancelled (shutdown) still lands, exactly once; a batch that fails to write is requeued.

With `idle=True` the periodic batches are written by a second thread at idle CPU priority, so on a shared core
they never delay the event loop's thread (`perf sched` found them behind the gateway's 1-connection latency
tail). A busy core starves such a thread, so the backlog is bounded: a batch of `IDLE_MAX_STATEMENTS` or more,
or whose oldest statement waited `IDLE_MAX_AGE_S`, is written at normal priority, and so is every flush a caller
waits for (a query, shutdown). One lock keeps the connection to one thread at a time.
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

from fastroute.background import idle_thread, stop_task

log = logging.getLogger("fastroute.sqlite")

Statement = tuple[str, tuple[Any, ...]]
OPEN_TIMEOUT_S = 30.0  # how long opening waits for other processes opening the same file
IDLE_MAX_STATEMENTS = 256  # a periodic batch this large is written at normal priority (idle mode)
IDLE_MAX_AGE_S = 1.0  # ... and so is one whose oldest statement has waited this long


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY ("database is locked") or SQLITE_LOCKED, including their extended codes."""
    return error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SqliteBatchWriter:
    def __init__(self, path: Path, *, name: str, flush_interval_s: float = 0.2, idle: bool = False) -> None:
        self.path = path
        self.name = name
        self.flush_interval_s = flush_interval_s
        self.idle = idle
        self.written = 0  # statements written so far
        self.written_idle = 0  # ... of which by the idle-priority thread
        self._pending: list[Statement] = []
        self._pending_since = 0.0  # monotonic time the oldest pending statement was queued
        self._executor: ThreadPoolExecutor | None = None
        self._idle_executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._conn_lock = asyncio.Lock()
        self._in_flight: asyncio.Future[None] | None = None  # the last batch handed to a thread

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Creates or migrates the schema (on the worker thread, once per start)."""

    async def _after_flush(self) -> None:
        """Periodic upkeep run by the writer task after each flush (e.g. pruning)."""

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fastroute-{self.name}")
        if self.idle:
            self._idle_executor = idle_thread(f"fastroute-{self.name}-idle")
        self._wake = asyncio.Event()
        self._conn_lock = asyncio.Lock()
        await self._run(self._open)
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
        """Runs `fn(*args)` on the normal-priority thread, alone with the connection."""
        assert self._executor is not None, f"{self.name} store not started"
        async with self._conn_lock:
            await self._settle()
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _settle(self) -> None:
        """Waits (holding the lock) until the last batch handed to a thread is written. Its flush may have been
        cancelled and let go of the lock while the batch still runs, on the other thread in idle mode."""
        write = self._in_flight
        if write is not None and not write.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(write)

    def _queue(self, sql: str, params: tuple[Any, ...]) -> None:
        if not self._pending:
            self._pending_since = time.monotonic()
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
                await self.flush(urgent=False)
                await self._after_flush()
            except Exception:
                log.exception("%s store: writing a batch failed; it stays queued", self.name)

    async def flush(self, *, urgent: bool = True) -> None:
        """Writes everything queued so far (in one transaction). `urgent=False` (the periodic writer) lets an
        idle-mode store write a small, recent batch at idle priority."""
        async with self._conn_lock:
            await self._settle()
            if not self._pending or self._conn is None:
                return
            batch, self._pending, since = self._pending, [], self._pending_since
            executor = self._executor
            if not urgent and self._idle_executor is not None and self._idle_ok(len(batch), since):
                executor = self._idle_executor
            # The connection is bound now: close() may drop `self._conn` while this write is still queued.
            write = asyncio.get_running_loop().run_in_executor(executor, self._write, self._conn, batch)
            self._in_flight = write
            try:
                # Shielded: if the caller is cancelled (shutdown), the batch still lands, exactly once.
                await asyncio.shield(write)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._pending[:0] = batch
                self._pending_since = since
                raise
            self.written += len(batch)
            if executor is self._idle_executor:
                self.written_idle += len(batch)

    @staticmethod
    def _idle_ok(statements: int, since: float) -> bool:
        """Whether a periodic batch of `statements`, the oldest queued at `since`, may wait for an idle core
        (the backlog bound, see the module text)."""
        return statements < IDLE_MAX_STATEMENTS and time.monotonic() - since < IDLE_MAX_AGE_S

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
            if self._idle_executor is not None:
                self._idle_executor.shutdown(wait=True)
                self._idle_executor = None
