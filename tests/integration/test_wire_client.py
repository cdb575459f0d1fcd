"""The lean upstream HTTP/1.1 client (`providers.wire`) against scripted raw-socket servers."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fastroute.providers.wire import OriginPool, Timeouts, UpstreamProtocolError

FAST = Timeouts(connect_s=2.0, read_s=2.0, total_s=5.0)
Script = Callable[[bytes, asyncio.StreamWriter], Any]


class ScriptedServer:
    """Answers each request with bytes chosen by `script(request_bytes, writer)`; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.base_events.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                result = self.script(head + body, writer)
                if asyncio.iscoroutine(result):
                    result = await result
                await writer.drain()
                if result == "close":
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Any]]:
    servers: list[ScriptedServer] = []

    async def start(script: Script) -> ScriptedServer:
        s = ScriptedServer(script)
        s.server = await asyncio.start_server(s.handle, "127.0.0.1", 0)
        servers.append(s)
        return s

    yield start
    for s in servers:
        assert s.server is not None
        s.server.close()


def plain(body: bytes, *, extra: bytes = b"") -> Script:
    def script(_req: bytes, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body))

    return script


async def test_content_length_answers_reuse_one_connection(serve: Any) -> None:
    server = await serve(plain(b'{"ok": true}', extra=b"X-Thing: a\r\n"))
    pool = OriginPool(server.url, limit=4)
    for _ in range(3):
        resp = await pool.request("POST", f"{server.url}/v1/x?y=1", b"{}", {"Content-Type": "application/json"}, FAST)
        assert resp.status == 200
        assert resp.headers["x-thing"] == "a"
        assert await resp.read() == b'{"ok": true}'
        resp.release()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/x?y=1 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in first and b"\r\nContent-Length: 2\r\n" in first
    pool.close()


async def test_chunked_stream_is_read_line_by_line_as_it_arrives(serve: Any) -> None:
    gate = asyncio.Event()

    async def script(_req: bytes, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        w.write(b"8\r\ndata: 1\n\r\n")
        await w.drain()
        await gate.wait()  # the first line must be readable before the rest exists
        w.write(b"1\r\n\n\r\n" + b"9\r\ndata: 2\n\n\r\n" + b"0\r\n\r\n")

    server = await serve(script)
    pool = OriginPool(server.url, limit=1)
    resp = await pool.request("POST", server.url + "/s", b"", {}, FAST)
    lines = resp.content.__aiter__()
    assert await lines.__anext__() == b"data: 1\n"
    gate.set()
    rest = [line async for line in lines]
    assert rest == [b"\n", b"data: 2\n", b"\n"]
    resp.release()
    resp2 = await pool.request("POST", server.url + "/s", b"", {}, FAST)
    assert await resp2.read() == b"data: 1\n\ndata: 2\n\n"
    resp2.release()
    assert server.connections == 1  # a fully read chunked body leaves the connection reusable
    pool.close()


async def test_has_event_says_whether_a_whole_sse_event_is_already_buffered(serve: Any) -> None:
    gate = asyncio.Event()

    async def script(_req: bytes, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        w.write(b"16\r\ndata: 1\n\ndata: 2\n\ndata\r\n")  # two whole events and the start of a third
        await w.drain()
        await gate.wait()
        w.write(b"4\r\n: 3\n\r\n" + b"1\r\n\n\r\n" + b"0\r\n\r\n")

    server = await serve(script)
    pool = OriginPool(server.url, limit=1)
    resp = await pool.request("POST", server.url + "/s", b"", {}, FAST)
    lines = resp.content.__aiter__()
    assert await lines.__anext__() == b"data: 1\n"
    assert resp.content.has_event()  # "\ndata: 2\n\n" is buffered
    assert await lines.__anext__() == b"\n"
    assert await lines.__anext__() == b"data: 2\n"
    assert await lines.__anext__() == b"\n"
    assert not resp.content.has_event()  # only "data" of the third event: reading on would wait
    gate.set()
    rest = [line async for line in lines]
    assert rest == [b"data: 3\n", b"\n"]
    assert resp.content.has_event()  # the body ended: nothing left to wait for
    resp.release()
    pool.close()


async def test_gzip_body_is_decoded_and_connection_close_is_honoured(serve: Any) -> None:
    packed = gzip.compress(b"hello " * 100)

    def script(_req: bytes, w: asyncio.StreamWriter) -> str:
        w.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (len(packed), packed)
        )
        return "close"

    server = await serve(script)
    pool = OriginPool(server.url, limit=2)
    for _ in range(2):
        resp = await pool.request("POST", server.url + "/", b"", {}, FAST)
        assert await resp.read() == b"hello " * 100
        resp.release()
    assert server.connections == 2
    pool.close()


async def test_body_until_close_without_length(serve: Any) -> None:
    def script(_req: bytes, w: asyncio.StreamWriter) -> str:
        w.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
        return "close"

    server = await serve(script)
    pool = OriginPool(server.url, limit=1)
    resp = await pool.request("POST", server.url + "/", b"", {}, FAST)
    assert await resp.read() == b"all of it"
    resp.release()
    pool.close()


async def test_connection_cut_mid_body_raises_connection_error(serve: Any) -> None:
    def script(_req: bytes, w: asyncio.StreamWriter) -> str:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        return "close"

    server = await serve(script)
    pool = OriginPool(server.url, limit=1)
    resp = await pool.request("POST", server.url + "/", b"", {}, FAST)
    with pytest.raises(ConnectionError):
        await resp.read()
    resp.release()
    pool.close()


async def test_read_timeout_and_total_timeout(serve: Any) -> None:
    async def silent(_req: bytes, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    server = await serve(silent)
    pool = OriginPool(server.url, limit=1)
    with pytest.raises(TimeoutError):
        await pool.request("POST", server.url + "/", b"", {}, Timeouts(2.0, 0.1, 5.0))

    async def dribble(_req: bytes, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
        for _ in range(50):
            w.write(b"x")
            await w.drain()
            await asyncio.sleep(0.02)

    server2 = await serve(dribble)
    pool2 = OriginPool(server2.url, limit=1)
    resp = await pool2.request("POST", server2.url + "/", b"", {}, Timeouts(2.0, 0.5, 0.3))
    with pytest.raises(TimeoutError):
        await resp.read()  # each byte is in time, but the whole call is not
    resp.release()
    pool.close()
    pool2.close()


async def test_garbage_is_a_protocol_error_and_refused_is_connection_error(serve: Any) -> None:
    def script(_req: bytes, w: asyncio.StreamWriter) -> str:
        w.write(b"SPDY/9 what\r\n\r\n")
        return "close"

    server = await serve(script)
    pool = OriginPool(server.url, limit=1)
    with pytest.raises(UpstreamProtocolError):
        await pool.request("POST", server.url + "/", b"", {}, FAST)
    pool.close()
    url = server.url
    assert server.server is not None
    server.server.close()
    await server.server.wait_closed()
    dead = OriginPool(url, limit=1)
    with pytest.raises(ConnectionError):
        await dead.request("POST", url + "/", b"", {}, FAST)
    dead.close()


async def test_pool_limit_queues_callers(serve: Any) -> None:
    async def slow(_req: bytes, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.05)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server = await serve(slow)
    pool = OriginPool(server.url, limit=2)

    async def one() -> bytes:
        resp = await pool.request("POST", server.url + "/", b"", {}, FAST)
        body = await resp.read()
        resp.release()
        return body

    assert await asyncio.gather(*(one() for _ in range(6))) == [b"ok"] * 6
    assert server.connections == 2
    pool.close()


async def test_unfinished_response_closed_is_not_reused(serve: Any) -> None:
    server = await serve(plain(b"x" * 10))
    pool = OriginPool(server.url, limit=1)
    resp = await pool.request("POST", server.url + "/", b"", {}, FAST)
    resp.close()
    assert resp.closed
    resp = await pool.request("POST", server.url + "/", b"", {}, FAST)
    assert await resp.read() == b"x" * 10
    resp.release()
    assert server.connections == 2
    pool.close()
