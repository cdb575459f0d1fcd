"""Server-sent events out of a byte buffer: where the next event ends, and its name and data.

Pure (no I/O, no asyncio). The rules are those of the line-by-line parser this replaces (kept as the
reference in tests/unit/providers/test_sse_frames.py): a blank line ends an event; `data:` lines are
joined with newlines (leading spaces dropped); `event:` names the event; comments and other fields are
ignored; an event without data is not an event.
"""

from __future__ import annotations

Event = tuple[str | None, bytes]


def event_end(buffer: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """(index where the first complete event at or after `start` ends, length of the blank-line separator
    after it), or (-1, 0) when no blank line is buffered yet."""
    lf = buffer.find(b"\n\n", start)
    # A CRLF blank line can only come first if it ends by the LF one: search no further than that.
    crlf = buffer.find(b"\n\r\n", start, lf + 1 if lf >= 0 else len(buffer))
    if crlf >= 0:
        return crlf, 3
    if lf >= 0:
        return lf, 2
    return -1, 0


def parse_event(block: bytes) -> Event | None:
    """The event in `block` (its lines, without the blank line that ended it), or None without data."""
    if block.startswith(b"data:") and b"\n" not in block:  # one data line: what OpenAI-style streams send
        return None, block[5:].rstrip(b"\r").lstrip(b" ")
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[5:].rstrip(b"\r").lstrip(b" "))
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    return (name, b"\n".join(data)) if data else None
