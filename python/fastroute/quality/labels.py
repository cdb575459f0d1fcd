"""Labelled routing data from shadow evaluation: JSONL in the schema of the team's routing data.

Each row is one prompt with a frontier (`strong`, the reference: 1) and a cheaper-tier (`weak`: 1 when the
judge found it agrees, else 0) outcome, readable by `fastroute.training.dataset.read_rows`, so
`fastroute train --from-ledger` can retrain the router on what production taught. Rows hold prompt text:
the file lives under the data directory and is written only while shadow evaluation runs with labels on.
Must not import aiohttp.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

LABELS_FILE = "labels.jsonl"


def labels_path(data_dir: Path) -> Path:
    return data_dir / "quality" / LABELS_FILE


def label_row(
    messages: list[dict[str, Any]],
    *,
    agree: bool,
    agreement: float,
    app: str,
    tier: str,
    model: str,
    reference_model: str,
    judge: str,
    request_id: str,
    feature_version: int | None,
    ts: float,
) -> dict[str, Any]:
    """One labelled row: `prompt` for a single user message, else `messages` (both read by the trainer)."""
    row: dict[str, Any] = {}
    users = [m for m in messages if m.get("role") == "user"]
    if len(messages) == 1 and len(users) == 1 and isinstance(users[0].get("content"), str):
        row["prompt"] = users[0]["content"]
    else:
        row["messages"] = [{"role": m.get("role"), "content": m.get("content")} for m in messages]
    row.update(
        strong=1,
        weak=1 if agree else 0,
        split="train",
        category=app,
        source="shadow",
        tier=tier,
        model=model,
        reference_model=reference_model,
        judge=judge,
        agreement=round(agreement, 4),
        feature_version=feature_version,
        request_id=request_id,
        ts=round(ts, 3),
    )
    return row


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Appends rows (blocking: call off the event loop)."""
    data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    if not data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as fh:
        fh.write(data)


def read_labels(path: Path, *, since: float | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a labels file (newer than `since`); unreadable lines are skipped."""
    if not path.is_file():
        return
    with path.open("rb") as fh:
        for line in fh:
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line cut by a crash mid-write
            if isinstance(row, dict) and (since is None or float(row.get("ts", 0.0)) >= since):
                yield row


def export_labels(
    data_dir: Path,
    dest: Path,
    *,
    since: float | None = None,
    apps: Iterable[str] | None = None,
    tiers: Iterable[str] = ("budget",),
) -> int:
    """Writes collected shadow labels to `dest` as routing-schema JSONL; returns the rows written.

    This is the loader behind `fastroute train --from-ledger`. By default only budget-tier comparisons are
    kept (the router's strong/weak pair is frontier vs budget); a prompt seen several times keeps its latest
    outcome.
    """
    keep_apps = set(apps) if apps is not None else None
    keep_tiers = set(tiers)
    latest: dict[tuple[bytes, str], dict[str, Any]] = {}
    for row in read_labels(labels_path(data_dir), since=since):
        if row.get("tier") not in keep_tiers or (keep_apps is not None and row.get("category") not in keep_apps):
            continue
        key = (orjson.dumps(row.get("prompt") or row.get("messages")), str(row.get("tier")))
        latest[key] = row
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    with tmp.open("wb") as fh:
        for row in latest.values():
            fh.write(orjson.dumps(row) + b"\n")
    os.replace(tmp, dest)
    return len(latest)


def compact(path: Path, *, retention_days: float, max_rows: int, now: float | None = None) -> int:
    """Drops rows past retention and the oldest beyond `max_rows` (blocking); returns rows kept.

    Streams the file, holding at most `max_rows` rows in memory.
    """
    if not path.is_file():
        return 0
    cutoff = (time.time() if now is None else now) - retention_days * 86400.0
    rows: deque[dict[str, Any]] = deque(read_labels(path, since=cutoff), maxlen=max_rows)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
    os.replace(tmp, path)
    return len(rows)


class LabelFile:
    """The labels file of one data directory: appends and compactions serialised (call off the loop)."""

    def __init__(self, path: Path, *, retention_days: float, max_rows: int) -> None:
        self.path = path
        self.retention_days = retention_days
        self.max_rows = max_rows
        self._lock = threading.Lock()

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            append_rows(self.path, rows)

    def compact(self, now: float | None = None) -> int:
        with self._lock:
            return compact(self.path, retention_days=self.retention_days, max_rows=self.max_rows, now=now)
