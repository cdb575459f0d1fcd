"""Whole-event SSE parsing (`ResponseBody.sse_events` over `sse_frames`) against the line-by-line reference parser,
on random event streams cut into random network reads."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fastroute.providers.sse_frames import event_end, parse_event
from fastroute.providers.wire_response import ResponseBody


def reference_events(raw: bytes) -> list[tuple[str | None, bytes]]:
    """The line-based parser the gateway used before (one line per step)."""
    out: list[tuple[str | None, bytes]] = []
    event: str | None = None
    data: list[bytes] = []
    lines = raw.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the stream ended with a line break, not with an empty last line
    for line in lines:
        line = line.rstrip(b"\r\n")
        if not line:
            if data:
                out.append((event, b"\n".join(data)))
            event, data = None, []
            continue
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode("utf-8", "replace")
    if data:
        out.append((event, b"\n".join(data)))
    return out


class FeedingConnection:
    """Stands in for the wire connection: each time the body waits, the next piece of the stream arrives."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.body: ResponseBody | None = None
        self.waiting: Any = None

    def resume(self) -> None: ...

    def pause(self) -> None: ...

    def wait_for_bytes(self, waiter: asyncio.Future[None]) -> None:
        assert self.body is not None
        loop = asyncio.get_running_loop()
        if self.pieces:
            loop.call_soon(self.body.feed, self.pieces.pop(0))
        else:
            loop.call_soon(self.body.finish)


async def whole_event_parse(pieces: list[bytes]) -> list[tuple[str | None, bytes]]:
    conn = FeedingConnection(pieces)
    body = ResponseBody(conn)  # type: ignore[arg-type]
    conn.body = body
    return [event async for event in body.sse_events()]


line = st.one_of(
    st.builds(lambda s: b"data:" + s, st.binary(max_size=12).filter(lambda b: b"\n" not in b and b"\r" not in b)),
    st.builds(lambda s: b"data: " + s.encode(), st.text(max_size=12).filter(lambda t: "\n" not in t and "\r" not in t)),
    st.builds(lambda s: b"event: " + s.encode(), st.text("abcxyz", max_size=6)),
    st.just(b": keep-alive comment"),
    st.just(b"id: 7"),
    st.just(b""),
)
stream = st.lists(st.tuples(line, st.sampled_from([b"\n", b"\r\n"])), max_size=30).map(
    lambda lines: b"".join(text + end for text, end in lines)
)


@settings(max_examples=300, deadline=None)
@given(raw=stream, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8), tail=st.booleans())
def test_whole_event_parser_matches_the_line_parser_whatever_the_reads(raw: bytes, cuts: list[int], tail: bool) -> None:
    if tail:
        raw += b"data: unterminated"
    points = sorted({min(c, len(raw)) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True) if raw[a:b]]
    assert asyncio.run(whole_event_parse(pieces)) == reference_events(raw)


def test_event_end_finds_the_first_blank_line_of_either_kind() -> None:
    assert event_end(b"data: 1\n\ndata: 2\r\n\r\n") == (7, 2)
    assert event_end(b"data: 1\r\n\r\ndata: 2\n\n") == (8, 3)
    assert event_end(b"data: 1\ndata: 2\n") == (-1, 0)
    assert parse_event(b"event: ping") is None  # no data: not an event
    assert parse_event(b"data: a\r\ndata:b\r") == (None, b"a\nb")
