"""Chunked transfer decoding in the lean upstream client (`providers.wire`): whatever sizes, extensions and
trailers the chunks carry and however the network cuts them into reads, the reader gets the body's bytes
exactly, the response completes once, and malformed framing is a protocol error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastroute.providers.wire import UpstreamProtocolError, _Connection

HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"


class Transport:
    def __init__(self) -> None:
        self.closed = False

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def encode(pieces: list[bytes], extensions: list[bool], trailer: bool) -> bytes:
    out = b""
    for piece, ext in zip(pieces, extensions, strict=False):
        out += b"%x%s\r\n%s\r\n" % (len(piece), b";name=value" if ext else b"", piece)
    return out + b"0\r\n" + (b"X-Trailer: 1\r\n" if trailer else b"") + b"\r\n"


async def decode(raw: bytes, cuts: list[int]) -> tuple[Any, Transport, bytes]:
    """Feeds the head and `raw` in reads cut at `cuts`; returns (the body's outcome, the transport, what is left)."""
    conn = _Connection(pool=None)  # type: ignore[arg-type]  # no pool: nothing here sends or returns
    transport = Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn._head_waiter = asyncio.get_running_loop().create_future()
    data = HEAD + raw
    points = sorted({min(c, len(data)) for c in cuts})
    for a, b in zip([0, *points], [*points, len(data)], strict=True):
        if data[a:b]:
            conn.data_received(data[a:b])
    resp = conn._head_waiter.result() if conn._head_waiter is not None else conn.response
    assert resp is not None
    try:
        outcome: Any = await asyncio.wait_for(resp.content.read_all(), 1)
    except UpstreamProtocolError as e:
        outcome = e
    return outcome, transport, bytes(conn._buf)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.binary(min_size=1, max_size=300), max_size=12),
    extensions=st.lists(st.booleans(), min_size=12, max_size=12),
    trailer=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=10),
)
def test_the_body_arrives_whole_whatever_the_reads(
    pieces: list[bytes], extensions: list[bool], trailer: bool, cuts: list[int]
) -> None:
    body, transport, left = asyncio.run(decode(encode(pieces, extensions, trailer), cuts))
    assert body == b"".join(pieces)
    assert not transport.closed and left == b""


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"5\r\nhelloXX0\r\n\r\n", "chunk not followed by CRLF"),
        (b"zz\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
        (b"-5\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
        (b"5;" + b"x" * 5000, "chunk header too long"),
    ],
)
async def test_bad_framing_is_a_protocol_error_and_the_socket_is_closed(raw: bytes, why: str) -> None:
    body, transport, _ = await decode(b"3\r\nabc\r\n" + raw, [len(HEAD) + 4])
    assert isinstance(body, UpstreamProtocolError) and why in str(body)
    assert transport.closed


async def test_bytes_after_the_last_chunk_mean_the_socket_is_not_reused() -> None:
    conn_body, _, left = await decode(b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n", [])
    assert conn_body == b"abc" and left.startswith(b"HTTP/1.1")
