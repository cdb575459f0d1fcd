"""What an upstream answered, as the lean HTTP/1.1 client (`wire`) hands it over: status, headers, and a body
whose decoded bytes are delivered as they arrive (read whole, line by line, or as server-sent events).

Owns buffering and flow control of one response body (reading pauses above `PAUSE_ABOVE` undelivered
bytes); the socket and HTTP framing stay in `wire`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING

from fastroute.providers.sse_frames import Event, event_end, parse_event

if TYPE_CHECKING:
    from fastroute.providers.wire import _Connection

PAUSE_ABOVE = 1024 * 1024  # undelivered body bytes before reading from the socket pauses
RESUME_BELOW = 64 * 1024


class Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; a repeated header's values are joined with ", "."""

    __slots__ = ("_by_name",)

    def __init__(self, by_lower_name: dict[str, str]) -> None:
        self._by_name = by_lower_name

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"Headers({self._by_name!r})"


class ResponseBody:
    """Where a response's decoded body bytes wait for the reader; line iteration is `async for`."""

    __slots__ = ("_conn", "_data", "_done", "_error", "_events", "_waiter")

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self._data = bytearray()
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._events: deque[Event] = deque()  # whole events cut out of `_data`, not yet handed over

    def feed(self, data: bytes | bytearray) -> None:
        self._data += data
        self._wake()
        if len(self._data) > PAUSE_ABOVE:
            self._conn.pause()

    def finish(self, error: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Returns when more bytes arrived or the body ended (or failed)."""
        conn = self._conn
        conn.resume()
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        conn.wait_for_bytes(waiter)
        try:
            await waiter
        finally:
            conn.waiting = None

    async def read_all(self) -> bytes:
        while not self._done:
            await self.wait()
        if self._error is not None:
            raise self._error
        data = bytes(self._data)
        self._data.clear()
        return data

    def has_event(self) -> bool:
        """True when the body has ended or a whole server-sent event (ended by a blank line) is buffered."""
        data = self._data
        return bool(self._events) or self._done or b"\n\n" in data or b"\r\n\r\n" in data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._lines()

    def next_event(self) -> Event | None:
        """The next whole server-sent event already buffered (rules: `sse_frames`), or None: then the body has
        ended (`ended`) or more bytes must arrive first (`await wait()`). Raises what ended the body badly.

        Every whole event buffered is cut out in one pass and queued (`has_event` counts the queue too)."""
        queue = self._events
        if queue:
            return queue.popleft()
        data = self._data
        pos = 0
        if b"\r" not in data:  # blank lines are LF only (the usual case): one split finds every event
            blocks = bytes(data).split(b"\n\n")
            pos = len(data) - len(blocks.pop())
            for block in blocks:
                if (event := parse_event(block)) is not None:
                    queue.append(event)
        else:
            while True:
                end, sep = event_end(data, pos)
                if end < 0:
                    break
                event = parse_event(bytes(data[pos:end]))
                pos = end + sep
                if event is not None:
                    queue.append(event)
        if pos:
            del data[:pos]
            if len(data) < RESUME_BELOW:
                self._conn.resume()
        if queue:
            return queue.popleft()
        if self._done:
            if self._error is not None:
                raise self._error
            if data:  # the body ended without the blank line after its last event
                tail = parse_event(bytes(data))
                data.clear()
                return tail
        return None

    @property
    def ended(self) -> bool:
        """No byte will arrive any more and every event has been handed over."""
        return self._done and not self._events and not self._data

    async def sse_events(self) -> AsyncIterator[Event]:
        """The body's server-sent events as they arrive, a whole event per step (see `next_event`)."""
        while True:
            event = self.next_event()
            if event is not None:
                yield event
            elif self.ended:
                return
            else:
                await self.wait()

    async def _lines(self) -> AsyncIterator[bytes]:
        data = self._data
        while True:
            end = data.find(b"\n")
            if end >= 0:
                line = bytes(data[: end + 1])
                del data[: end + 1]
                if len(data) < RESUME_BELOW:
                    self._conn.resume()
                yield line
                continue
            if self._done:
                if self._error is not None:
                    raise self._error
                if data:
                    line = bytes(data)
                    data.clear()
                    yield line
                return
            await self.wait()


class UpstreamResponse:
    """The answer's status and headers; the body is read with `read()` or line by line via `content`.

    Exactly one of `release()` (body fully read: the connection goes back to the pool) or `close()`
    must end it; `release()` on an unfinished body closes the connection instead.
    """

    __slots__ = ("_conn", "content", "headers", "reason", "status")

    def __init__(self, conn: _Connection, status: int, reason: str, headers: Headers) -> None:
        self._conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self.content = ResponseBody(conn)

    async def read(self) -> bytes:
        return await self.content.read_all()

    @property
    def closed(self) -> bool:
        return self._conn.response is not self

    def release(self) -> None:
        if self._conn.response is self:
            self._conn.end_response(reuse=self.content._done and self.content._error is None)

    def close(self) -> None:
        if self._conn.response is self:
            self._conn.end_response(reuse=False)
