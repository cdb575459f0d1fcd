"""A lean HTTP/1.1 client for upstream calls: keep-alive connection pools on raw asyncio protocols.

Owns sockets and HTTP/1.1 framing only (status line, headers, Content-Length / chunked / until-close
bodies, gzip), never request semantics. It replaces aiohttp's client on the hot path: on the benchmark
machine aiohttp's `ClientSession` costs 2.7-3.7x the CPU per upstream call (benchmarks/load/client_bench.py:
~260-500 us against ~95-140 us, depending on how busy the machine is).
Failures are builtins: `ConnectionError` (incl. `UpstreamProtocolError`) and `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from fastroute.providers.wire_response import Headers, ResponseBody, UpstreamResponse

MAX_HEAD_BYTES = 64 * 1024
TICK_S = 0.05  # how often a pool with calls in flight checks their deadlines (timeout precision)
_CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _CHUNK_TRAILER = range(4)
_COMPRESSED = ("gzip", "x-gzip", "deflate")


class UpstreamProtocolError(ConnectionError):
    """The upstream sent something that is not HTTP/1.1."""


class Timeouts:
    """Seconds: to connect, to wait for any next bytes (head or body), and for the whole call."""

    __slots__ = ("connect_s", "read_s", "total_s")

    def __init__(self, connect_s: float, read_s: float, total_s: float) -> None:
        self.connect_s, self.read_s, self.total_s = connect_s, read_s, total_s


class _Connection(asyncio.Protocol):
    """One upstream socket carrying one request at a time."""

    def __init__(self, pool: OriginPool) -> None:
        self.pool = pool
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.response: UpstreamResponse | None = None
        self.idle_since = 0.0
        self.lost = False
        self._buf = bytearray()
        self._head_waiter: asyncio.Future[UpstreamResponse] | None = None
        self._length = 0  # body bytes left (Content-Length), or -1 chunked, -2 until the socket closes
        self._chunk_state = _CHUNK_SIZE
        self._chunk_left = 0
        self._keep_alive = True
        self._paused = False
        self._decoder: Any = None
        self._timeouts: Timeouts | None = None
        # Deadlines (loop time) checked by the pool's ticker: cheaper than a timer per call.
        self.waiting: asyncio.Future[Any] | None = None
        self.read_deadline = 0.0  # while `waiting`: fail it if no byte arrives by then
        self.total_deadline = 0.0  # while a call is open (0 = none)

    # -- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.transport = None
        error = ConnectionError(f"upstream closed the connection{f': {exc}' if exc else ''}")
        if self._head_waiter is not None and not self._head_waiter.done():
            self._head_waiter.set_exception(error)
        resp = self.response
        if resp is not None and not resp.content._done:
            if self._length == -2:
                self._flush_decoder(resp)
                resp.content.finish()
            else:
                resp.content.finish(error)

    def eof_received(self) -> bool:
        return False  # close our side too

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if self._head_waiter is not None:
            if not self._parse_head():
                return
        if self.response is not None and not self.response.content._done:
            self._parse_body()
        elif buf:
            self._keep_alive = False  # bytes nobody asked for: never reuse this socket

    # -- flow control and timers -------------------------------------------------------------------
    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def wait_for_bytes(self, waiter: asyncio.Future[Any]) -> None:
        assert self._timeouts is not None
        self.waiting = waiter
        self.read_deadline = asyncio.get_running_loop().time() + self._timeouts.read_s

    def check_deadlines(self, now: float) -> None:
        """Called by the pool's ticker: fails a call whose total or read deadline has passed."""
        if self.total_deadline and now >= self.total_deadline:
            self._total_timeout()
            return
        waiter = self.waiting
        if waiter is not None and now >= self.read_deadline and not waiter.done():
            self._keep_alive = False
            waiter.set_exception(TimeoutError("upstream sent nothing within the read timeout"))

    def _total_timeout(self) -> None:
        self.total_deadline = 0.0
        error = TimeoutError("upstream call exceeded its total timeout")
        if self._head_waiter is not None and not self._head_waiter.done():
            self._head_waiter.set_exception(error)
        if self.response is not None:
            self.response.content.finish(error)
        self.abort()

    # -- request / response ---------------------------------------------------------------------------
    async def send(self, wire: bytes, timeouts: Timeouts) -> UpstreamResponse:
        """Writes the request and waits for the response head."""
        loop = asyncio.get_running_loop()
        self._timeouts = timeouts
        self._keep_alive = True
        waiter: asyncio.Future[UpstreamResponse] = loop.create_future()
        self._head_waiter = waiter
        now = loop.time()
        self.total_deadline = now + timeouts.total_s
        self.waiting, self.read_deadline = waiter, now + timeouts.read_s
        self.pool.tick()
        try:
            self.transport.write(wire)
            return await waiter
        finally:
            self.waiting = None
            self._head_waiter = None

    def _parse_head(self) -> bool:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    self._fail_head(UpstreamProtocolError("response head too large"))
                return False
            lines = buf[:end].decode("latin-1").split("\r\n")
            del buf[: end + 4]
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                self._fail_head(UpstreamProtocolError(f"bad status line {lines[0][:80]!r}"))
                return False
            status = int(parts[1])
            if 100 <= status < 200:
                continue  # interim answer (100 Continue): the real one follows
            break
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                self._fail_head(UpstreamProtocolError(f"bad header line {line[:80]!r}"))
                return False
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        connection = headers.get("connection", "").lower()
        self._keep_alive = "close" not in connection and (parts[0] == "HTTP/1.1" or "keep-alive" in connection)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._length, self._chunk_state = -1, _CHUNK_SIZE
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError:
                self._fail_head(UpstreamProtocolError("bad Content-Length"))
                return False
        elif status in (204, 304):
            self._length = 0
        else:
            self._length, self._keep_alive = -2, False
        encoding = headers.get("content-encoding")
        # wbits 47: a zlib or a gzip header, detected
        self._decoder = zlib.decompressobj(wbits=47) if encoding and encoding.lower() in _COMPRESSED else None
        resp = UpstreamResponse(self, status, parts[2] if len(parts) > 2 else "", Headers(headers))
        self.response = resp
        waiter = self._head_waiter
        self._head_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(resp)
        if self._length == 0:
            resp.content.finish()
        return True

    def _fail_head(self, error: BaseException) -> None:
        if self._head_waiter is not None and not self._head_waiter.done():
            self._head_waiter.set_exception(error)
        self.abort()

    def _emit(self, body: ResponseBody, data: bytes | bytearray) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as e:
                body.finish(UpstreamProtocolError(f"bad compressed body: {e}"))
                self.abort()
                return
        if data:
            body.feed(data)

    def _flush_decoder(self, resp: UpstreamResponse) -> None:
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                resp.content.feed(rest)

    def _parse_body(self) -> None:
        resp = self.response
        assert resp is not None
        body, buf = resp.content, self._buf
        if self._length == -2:
            if buf:
                self._emit(body, bytes(buf))
                buf.clear()
            return
        if self._length >= 0:
            take = min(self._length, len(buf))
            if take:
                self._emit(body, bytes(buf[:take]))
                del buf[:take]
                self._length -= take
            if self._length == 0:
                self._complete(resp)
            return
        # Chunked: walk the buffer by index and hand the reader the data of every whole chunk at once (one
        # feed, one wake-up), then drop what was read in one cut.
        pos, end, state = 0, len(buf), self._chunk_state
        pieces: list[bytearray] = []
        complete, error = False, ""
        while pos < end:
            if state == _CHUNK_DATA:
                take = min(self._chunk_left, end - pos)
                pieces.append(buf[pos : pos + take])
                pos += take
                self._chunk_left -= take
                if self._chunk_left == 0:
                    state = _CHUNK_CRLF
                continue
            if state == _CHUNK_CRLF:
                if end - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    error = "chunk not followed by CRLF"
                    break
                pos += 2
                state = _CHUNK_SIZE
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if end - pos > 4096:
                    error = "chunk header too long"
                break
            line = buf[pos:eol]
            pos = eol + 2
            if state == _CHUNK_TRAILER:
                if not line:
                    complete = True
                    break
                continue
            try:
                size = int(line, 16)  # no extension (the usual case)
            except ValueError:
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    size = -1
            if size < 0:  # int() also reads a sign: a negative size is as bad as no number
                error = "bad chunk size"
                break
            if size == 0:
                state = _CHUNK_TRAILER
            elif pos + size + 2 <= end and buf[pos + size : pos + size + 2] == b"\r\n":
                pieces.append(buf[pos : pos + size])  # the whole chunk is here: take it in one step
                pos += size + 2
            else:
                self._chunk_left, state = size, _CHUNK_DATA
        del buf[:pos]
        self._chunk_state = state
        if pieces:  # what arrived before an error still reaches the reader, as it did chunk by chunk
            self._emit(body, pieces[0] if len(pieces) == 1 else b"".join(pieces))
        if error:
            self._body_error(resp, error)
        elif complete:
            self._complete(resp)

    def _body_error(self, resp: UpstreamResponse, what: str) -> None:
        resp.content.finish(UpstreamProtocolError(what))
        self.abort()

    def _complete(self, resp: UpstreamResponse) -> None:
        self._flush_decoder(resp)
        if self._buf:
            self._keep_alive = False
        resp.content.finish()
        self.total_deadline = 0.0

    def end_response(self, *, reuse: bool) -> None:
        """The caller is done with the response: back to the pool, or closed."""
        self.total_deadline = 0.0
        self.response = None
        self.resume()
        reusable = reuse and self._keep_alive and not self.lost and not self._buf
        if not reusable:
            self.abort()
        self.pool.give_back(self, reusable)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        self.lost = True


class OriginPool:
    """Keep-alive connections to one origin (scheme://host:port), at most `limit` at a time."""

    def __init__(self, base_url: str, limit: int, keepalive_s: float = 15.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        default_port = parts.port is None or parts.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"
        self._host = self.host_header.encode("idna")
        self.limit = limit
        self.keepalive_s = keepalive_s
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if parts.scheme == "https" else None
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._paths: dict[str, bytes] = {}
        self._header_blocks: dict[int, tuple[Mapping[str, str], bytes]] = {}
        self._ticker: asyncio.TimerHandle | None = None
        self.closed = False

    def tick(self) -> None:
        """Makes sure the deadline check runs while calls are open (one timer per pool, not per call)."""
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().call_later(TICK_S, self._check)

    def _check(self) -> None:
        self._ticker = None
        if not self._busy:
            return
        now = asyncio.get_running_loop().time()
        for conn in list(self._busy):
            conn.check_deadlines(now)
        if self._busy:
            self.tick()

    def _header_block(self, headers: Mapping[str, str]) -> bytes:
        # Adapters pass the same headers mapping on every call: encode it once. The cache holds the
        # mapping itself, so its id cannot be reused by another object while the entry exists.
        cached = self._header_blocks.get(id(headers))
        if cached is not None and cached[0] is headers:
            return cached[1]
        block = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
        if len(self._header_blocks) < 64:
            self._header_blocks[id(headers)] = (headers, block)
        return block

    def _path(self, url: str) -> bytes:
        path = self._paths.get(url)
        if path is None:
            parts = urlsplit(url)
            path = ((parts.path or "/") + (f"?{parts.query}" if parts.query else "")).encode("ascii")
            if len(self._paths) < 1024:
                self._paths[url] = path
        return path

    async def request(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> UpstreamResponse:
        """Sends one request and returns once the response head has arrived."""
        wire = b"%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n%s" % (
            method.encode(), self._path(url), self._host, self._header_block(headers), len(body), body,
        )  # fmt: skip
        conn = await self._acquire(timeouts.connect_s)
        try:
            return await conn.send(wire, timeouts)
        except BaseException:
            conn.response = None
            conn.abort()
            self.give_back(conn, False)
            raise

    async def _acquire(self, connect_timeout_s: float) -> _Connection:
        if self.closed:
            raise ConnectionError("the upstream connection pool is closed")
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.lost and now - conn.idle_since < self.keepalive_s:
                self._busy.add(conn)
                return conn
            conn.abort()
        while len(self._busy) + self._opening >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if self._idle:
                return await self._acquire(connect_timeout_s)
        self._opening += 1
        try:
            loop = asyncio.get_running_loop()
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                ),
                connect_timeout_s,
            )  # fmt: skip
        finally:
            self._opening -= 1
        self._busy.add(conn)
        return conn

    def give_back(self, conn: _Connection, reusable: bool) -> None:
        self._busy.discard(conn)
        if reusable and not self.closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def close(self) -> None:
        self.closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for conn in [*self._idle, *self._busy]:
            conn.abort()
        self._idle.clear()
        self._busy.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionError("the upstream connection pool is closed"))
        self._waiters.clear()
