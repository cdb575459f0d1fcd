"""The request log: one JSON object per line per request, with no prompt text unless debugging asks for it.

Must not import aiohttp. Lines go to a binary sink (stderr, stdout or an appended file) opened by `open`,
formatted when each request finishes (after its answer went out) and written in small batches.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from fastroute.observability.outcome import NONE, latency_s, served_model, tier_of, token_counts
from fastroute.pipeline import RequestContext

Sink = Callable[[bytes], None]
log = logging.getLogger("fastroute.observability")


def context_line(ctx: RequestContext, *, include_prompt: bool = False, now: float | None = None) -> dict[str, Any]:
    """The log record of one finished request. Holds names, counts and timings only, never message text
    (unless `include_prompt`, a debugging knob, when `prompt` carries what the router saw)."""
    prompt, completion = token_counts(ctx)
    line: dict[str, Any] = {
        "ts": round(time.time() if now is None else now, 3),
        "event": "request",
        "request_id": ctx.request_id,
        "app": ctx.tenant.app,
        "department": ctx.tenant.department,
        "key_id": ctx.tenant.key_id,
        "tier": tier_of(ctx),
        "model": served_model(ctx),
        "route_reason": ctx.decision.reason if ctx.decision is not None else None,
        "cache": ctx.cache_status,
        "stream": ctx.chat.stream,
        "status": ctx.status,
        "error": ctx.error.code if ctx.error is not None else None,
        "attempts": ctx.attempts,
        "fallback_reason": ctx.fallback_reason,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "usage_estimated": ctx.usage_estimated,
        "cost_usd": round(ctx.cost_usd, 8),
        "counterfactual_usd": round(ctx.counterfactual_usd, 8),
        "latency_ms": round(latency_s(ctx) * 1000, 3),
        "overhead_ms": round(ctx.overhead_s() * 1000, 3),
        "route_ms": round(ctx.route_s * 1000, 3),
        "ttft_ms": round(ctx.ttft_s * 1000, 3) if ctx.ttft_s is not None else None,
        "decisions": ctx.decisions,
    }
    if include_prompt:
        line["prompt"] = ctx.prompt_text
    return line


def rejected_line(request_id: str, status: int, path: str, *, now: float | None = None) -> dict[str, Any]:
    """The log record of a chat request refused before the pipeline (unreadable body)."""
    return {
        "ts": round(time.time() if now is None else now, 3),
        "event": "rejected",
        "request_id": request_id,
        "path": path,
        "status": status,
        "tier": NONE,
        "model": NONE,
    }


class RequestLog:
    """Writes request records as JSON lines to `target`: `stderr`, `stdout`, `off` or a file path.

    Opened inside a running event loop, lines are buffered and written together every `flush_interval_s`
    (or every `batch` lines) so a request costs no system call; `close` writes what is left.
    """

    def __init__(
        self,
        target: str,
        *,
        include_prompt: bool = False,
        sink: Sink | None = None,
        flush_interval_s: float = 0.2,
        batch: int = 256,
    ) -> None:
        self.target = target
        self.include_prompt = include_prompt
        self.flush_interval_s = flush_interval_s
        self.batch = batch
        self._sink = sink
        self._file: BinaryIO | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[bytes] = []  # formatted lines waiting for the next write
        self._timer: asyncio.TimerHandle | None = None

    @property
    def enabled(self) -> bool:
        return self._sink is not None

    def open(self) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None  # no loop: write each line at once
        if self._sink is not None or self.target == "off":
            return
        if self.target in ("stderr", "stdout"):
            stream = sys.stderr if self.target == "stderr" else sys.stdout
            buffer = getattr(stream, "buffer", None)

            def write_stream(data: bytes) -> None:
                if buffer is not None:
                    buffer.write(data)
                else:
                    stream.write(data.decode())
                stream.flush()

            self._sink = write_stream
            return
        path = Path(self.target).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = file = path.open("ab", buffering=0)

        def write_file(data: bytes) -> None:
            file.write(data)

        self._sink = write_file

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
        self._sink = None
        self._loop = None

    def flush(self) -> None:
        """Writes every buffered line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending and self._sink is not None:
            data, self._pending = b"".join(self._pending), []
            try:
                self._sink(data)
            except (OSError, ValueError):
                log.exception("request log: writing to %s failed", self.target)

    def write(self, record: dict[str, Any]) -> None:
        if self._sink is not None:
            self._queue(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def request(self, ctx: RequestContext) -> None:
        """Logs a finished request. The line is formatted now (~6 us) so the context is not kept alive
        until the batch is written (kept contexts survive into older GC generations and cost more there)."""
        if self._sink is not None:
            line = context_line(ctx, include_prompt=self.include_prompt)
            self._queue(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))

    def _queue(self, item: bytes) -> None:
        self._pending.append(item)
        if self._loop is None or len(self._pending) >= self.batch:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(self.flush_interval_s, self.flush)
