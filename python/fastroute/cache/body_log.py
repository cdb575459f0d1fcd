"""`BodyLog`: the response cache's entry bytes (key, last user turn, answer) in append-only file segments.

The cache keeps ~100 bytes per entry in memory (`fastroute._native.EntryTable`) plus its vector; the
bytes a hit needs live here, as nginx's proxy cache keeps bodies on disk and keys in memory. Reads come
from the OS page cache (one `pread`, a few microseconds); under memory pressure the kernel may drop those
pages, which costs a disk read on a hit instead of the gateway's memory on every entry.

Segments are anonymous files (`tempfile.TemporaryFile`: unlinked at once, gone when the process exits,
never shared between workers). Appends are buffered and written in 64 KiB batches. A location is
`segment << 32 | offset`. Released bytes are counted per segment; a segment with nothing live is closed,
and one that is mostly dead is reported by `sparse_segments` so the cache can move its live records to
the head and release it (`SemanticCache` does this).
"""

from __future__ import annotations

import os
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["BodyLog"]

_SEGMENT_SHIFT = 32
_WRITE_BATCH = 64 * 1024


@dataclass(slots=True)
class _Segment:
    file: IO[bytes]
    size: int = 0  # bytes appended (written + buffered)
    live: int = 0  # appended minus released


class BodyLog:
    """Append-only store of byte records addressed by location.

    Args:
        directory: where segment files are created (None: the system temp directory).
        segment_bytes: a segment is closed for appends once this full.
        sparse_fraction: a closed segment whose live bytes fall below this share is `sparse`.
    """

    def __init__(
        self, directory: Path | None = None, *, segment_bytes: int = 8 << 20, sparse_fraction: float = 0.25
    ) -> None:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._sparse_fraction = sparse_fraction
        self._segments: dict[int, _Segment] = {}
        self._head = -1
        self._buf = bytearray()  # head segment bytes not yet written
        self._flushed = 0  # head segment bytes written to its file
        self._closer = weakref.finalize(self, _close_all, self._segments)  # files closed when the log goes
        self._new_segment()

    def _new_segment(self) -> None:
        file = tempfile.TemporaryFile(dir=self._dir)
        try:
            self._flush()
        except OSError:
            file.close()
            raise
        self._head += 1
        self._segments[self._head] = _Segment(file)
        self._flushed = 0

    def _flush(self) -> None:
        if self._buf:
            head = self._segments[self._head]
            os.pwrite(head.file.fileno(), self._buf, self._flushed)
            self._flushed += len(self._buf)
            self._buf.clear()

    @property
    def file_bytes(self) -> int:
        """Bytes held by the segments (live and released)."""
        return sum(s.size for s in self._segments.values())

    @property
    def live_bytes(self) -> int:
        return sum(s.live for s in self._segments.values())

    @property
    def segments(self) -> int:
        return len(self._segments)

    def append(self, data: bytes) -> int:
        """Stores `data`; returns its location. OSError (e.g. a full disk) leaves the log as it was."""
        head = self._segments[self._head]
        if head.size and head.size + len(data) > self._segment_bytes:
            self._new_segment()
            head = self._segments[self._head]
        if len(self._buf) >= _WRITE_BATCH:
            self._flush()  # before taking more: if the file cannot be written, the buffer stays bounded
        loc = (self._head << _SEGMENT_SHIFT) | head.size
        self._buf += data
        head.size += len(data)
        head.live += len(data)
        return loc

    def read(self, loc: int, length: int) -> bytes:
        """The `length` bytes stored at `loc`. OSError when they cannot be read (FileNotFoundError: the
        segment was released)."""
        number, offset = loc >> _SEGMENT_SHIFT, loc & 0xFFFF_FFFF
        segment = self._segments.get(number)
        if segment is None:
            raise FileNotFoundError(f"cache body log: segment {number} was released")
        if number == self._head and offset >= self._flushed:
            start = offset - self._flushed
            return bytes(self._buf[start : start + length])
        if number == self._head and offset + length > self._flushed:
            self._flush()
        data = os.pread(segment.file.fileno(), length, offset)
        if len(data) != length:
            raise OSError(f"cache body log: short read ({len(data)} of {length} bytes)")
        return data

    def release(self, loc: int, length: int) -> None:
        """The record at `loc` is no longer needed; a closed segment left with nothing live is deleted."""
        number = loc >> _SEGMENT_SHIFT
        segment = self._segments.get(number)
        if segment is None:
            return
        segment.live -= length
        if segment.live <= 0 and number != self._head:
            segment.file.close()
            del self._segments[number]

    def sparse_segments(self) -> list[tuple[int, int]]:
        """`[lo, hi)` location ranges of closed segments whose live share fell below `sparse_fraction`."""
        return [
            (n << _SEGMENT_SHIFT, (n + 1) << _SEGMENT_SHIFT)
            for n, s in self._segments.items()
            if n != self._head and s.live < s.size * self._sparse_fraction
        ]

    def clear(self) -> None:
        """Drops every record (the log stays usable)."""
        _close_all(self._segments)
        self._buf.clear()
        self._new_segment()

    def close(self) -> None:
        """Closes (and so deletes) every segment; the log is unusable afterwards."""
        self._buf.clear()
        _close_all(self._segments)


def _close_all(segments: dict[int, _Segment]) -> None:
    for segment in segments.values():
        segment.file.close()
    segments.clear()
