"""`BodyLog`: records read back byte for byte across write batches and segments; released segments go."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from fastroute.cache.body_log import BodyLog


def test_records_read_back_from_buffer_files_and_segments(tmp_path: Path) -> None:
    log = BodyLog(tmp_path, segment_bytes=100_000)
    rng = random.Random(3)
    records = [rng.randbytes(rng.randrange(1, 9_000)) for _ in range(200)]  # ~900 KB: many batches, segments
    locs = []
    for i, data in enumerate(records):
        locs.append(log.append(data))
        if i % 17 == 0:  # reads of records still in the write buffer and of ones already written
            j = rng.randrange(i + 1)
            assert log.read(locs[j], len(records[j])) == records[j]
    assert log.segments > 5
    assert all(log.read(loc, len(data)) == data for loc, data in zip(locs, records, strict=True))
    assert log.live_bytes == log.file_bytes == sum(map(len, records))
    assert list(tmp_path.iterdir()) == []  # anonymous files: nothing is left in the directory


def test_released_segments_are_closed_and_sparse_ones_reported(tmp_path: Path) -> None:
    log = BodyLog(tmp_path, segment_bytes=1_000, sparse_fraction=0.5)
    locs = [log.append(bytes([i]) * 100) for i in range(30)]  # 10 records per segment
    assert log.segments == 3
    for loc in locs[:10]:
        log.release(loc, 100)
    assert log.segments == 2 and log.file_bytes == 2_000  # the first segment, all released, is gone
    with pytest.raises(FileNotFoundError):  # an OSError: the cache treats it as a miss
        log.read(locs[0], 100)
    for loc in locs[10:16]:
        log.release(loc, 100)  # second segment 40% live: sparse; the head never is
    ranges = log.sparse_segments()
    assert len(ranges) == 1
    lo, hi = ranges[0]
    assert all(lo <= loc < hi for loc in locs[16:20]) and not any(lo <= loc < hi for loc in locs[20:])
    assert log.read(locs[16], 100) == bytes([16]) * 100


def test_clear_and_close(tmp_path: Path) -> None:
    log = BodyLog(tmp_path, segment_bytes=1_000)
    for i in range(25):
        log.append(bytes([i]) * 100)
    log.clear()
    assert log.file_bytes == 0 and log.segments == 1
    loc = log.append(b"again")
    assert log.read(loc, 5) == b"again"
    log.close()
    assert log.segments == 0


def test_a_failing_write_leaves_the_log_usable_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = BodyLog(tmp_path, segment_bytes=1 << 20)
    first = log.append(b"a" * 70_000)  # one write batch waiting
    real_pwrite = os.pwrite

    def full_disk(fd: int, data: object, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full_disk)
    for _ in range(5):
        with pytest.raises(OSError):
            log.append(b"b" * 100)
    assert log.live_bytes == 70_000  # the refused records left nothing behind
    assert log.read(first, 70_000) == b"a" * 70_000  # still served from the write buffer
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    again = log.append(b"c" * 10)
    assert log.read(first, 70_000) == b"a" * 70_000 and log.read(again, 10) == b"c" * 10
