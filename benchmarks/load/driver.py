"""A bounded HTTP/1.1 load driver for chat completions: N keep-alive connections for a fixed duration.

Raw asyncio protocol on uvloop (no client framework in the measured path), so one core drives well over
the gateway's rate. Every request carries a unique nonce; every response is checked (status, shape, and
that its text echoes that nonce). Streams are de-chunked and parsed event by event; time to first token
is the arrival of the first SSE event. Loopback only; stops by itself.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

PROMPTS = (
    "What is the capital of France, and roughly how many people live there?",
    "Write a Python function that returns the n-th Fibonacci number iteratively, with a short docstring.",
    "Summarise the main causes of the First World War in three bullet points for a high-school student.",
    "Translate into Spanish: 'The meeting has been moved to Thursday afternoon; please bring the report.'",
    "Explain the difference between a process and a thread, and when you would prefer each one in a "
    "web server that handles many slow clients.",
    "My SQL query `SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.country = 'DE'` "
    "is slow on a table with ten million rows. What indexes would you add and why?",
    "Give me a two-day itinerary for Lisbon with one museum, one viewpoint and a good place for dinner.",
    "Prove that the square root of two is irrational, step by step, and point out where the proof uses "
    "the fact that every integer has a unique prime factorisation.",
)
SYSTEM = "You are a helpful assistant. Answer accurately and concisely."


@dataclass(slots=True)
class Workload:
    """Builds request bodies: a prompt from the pool plus a unique nonce, and the answer text to expect."""

    model: str = "auto"
    stream: bool = False
    max_tokens: int = 64
    prompts: tuple[str, ...] = PROMPTS
    # 0.2 skips the cache's semantic level (FASTROUTE_CACHE_SEMANTIC_TEMPERATURE_MAX is 0 by default): each
    # request is an exact-level miss. At 0, each miss also searches its semantic neighbours (the template's
    # other requests, which the verifier refuses on their nonce) and stores a vector.
    temperature: float = 0.2

    def body(self, n: int) -> bytes:
        prompt = self.prompts[n % len(self.prompts)]
        data: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{prompt} [n:{n}]"}],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.stream:
            data["stream"] = True
        return orjson.dumps(data)


def expected_text(n: int) -> str:
    # Mirrors fake_upstream.answer_text; duplicated so the driver can run against any upstream build.
    return f"Answer to n:{n}. The fake upstream echoes the nonce so mix-ups are caught."


@dataclass(slots=True)
class Response:
    status: int
    head: bytes
    body: bytes
    t_first: float  # arrival of the first body bytes (first SSE event for streams)


class ClientConnection(asyncio.Protocol):
    """One keep-alive connection answering one request at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._status = 0
        self._head = b""
        self._length = -1  # -1: chunked; >= 0: content-length
        self._in_body = False
        self._body = bytearray()
        self._t_first = 0.0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def request(self, wire: bytes) -> asyncio.Future[Response]:
        if self.transport is None:
            raise ConnectionError("not connected")
        self._waiter = asyncio.get_running_loop().create_future()
        self._in_body = False
        self._body = bytearray()
        self._t_first = 0.0
        self.transport.write(wire)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._in_body:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            del buf[: end + 4]
            self._status = int(head[9:12])
            self._head = low = head.lower()
            at = low.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = low.find(b"\r\n", at + 2)
                self._length = int(low[at + 17 : stop if stop >= 0 else None])
            elif b"transfer-encoding: chunked" in low:
                self._length = -1
            else:
                self._length = 0
            self._in_body = True
        if buf and not self._t_first:
            self._t_first = time.perf_counter()
        if self._length >= 0:
            if len(buf) >= self._length:
                self._body = buf[: self._length]
                del buf[: self._length]
                self._done()
            return
        while True:  # chunked
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buf[:line_end]).split(b";")[0], 16)
            if len(buf) < line_end + 2 + size + 2:
                return
            if size == 0:
                del buf[: line_end + 4]
                self._done()
                return
            self._body += buf[line_end + 2 : line_end + 2 + size]
            del buf[: line_end + 2 + size + 2]

    def _done(self) -> None:
        waiter, self._waiter = self._waiter, None
        self._in_body = False
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self._status, self._head, bytes(self._body), self._t_first))


def check_plain(resp: Response, n: int) -> str | None:
    """None when the answer is right, else what was wrong."""
    if resp.status != 200:
        return f"status {resp.status}"
    try:
        data = orjson.loads(resp.body)
        text = data["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return "malformed body"
    return None if text == expected_text(n) else "wrong answer"


def check_stream(resp: Response, n: int) -> str | None:
    if resp.status != 200:
        return f"status {resp.status}"
    if b"content-type: text/event-stream" not in resp.head:
        return "not an event stream"
    events = [e for e in resp.body.split(b"\n\n") if e.startswith(b"data: ")]
    if not events or events[-1] != b"data: [DONE]":
        return "no [DONE]"
    text = []
    for event in events[:-1]:
        try:
            data = orjson.loads(event[6:])
        except orjson.JSONDecodeError:
            return "malformed event"
        if "error" in data:
            return "error event"
        for choice in data.get("choices") or ():
            text.append((choice.get("delta") or {}).get("content") or "")
    return None if "".join(text) == expected_text(n) else "wrong answer"


@dataclass
class LoadResult:
    """Latencies (seconds) of requests sent after warm-up, and what went wrong."""

    connections: int
    window_s: float
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return self.ok + sum(self.failures.values())

    def fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1


def _wire(host: str, port: int, body: bytes) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (host.encode(), port, len(body), body)
    )


async def run_load(
    host: str,
    port: int,
    workload: Workload,
    *,
    connections: int,
    duration_s: float,
    warmup_s: float = 1.0,
    first_nonce: int = 0,
    timeout_s: float = 30.0,
) -> LoadResult:
    """Runs `connections` closed-loop clients for `warmup_s + duration_s`; only post-warm-up requests count."""
    loop = asyncio.get_running_loop()
    counter = itertools.count(first_nonce)
    check: Callable[[Response, int], str | None] = check_stream if workload.stream else check_plain
    start = time.perf_counter()
    measure_from = start + warmup_s
    deadline = measure_from + duration_s
    result = LoadResult(connections, duration_s)
    last_done = [measure_from]

    async def client() -> None:
        conn: ClientConnection | None = None
        while time.perf_counter() < deadline:
            if conn is None or conn.transport is None:
                _, conn = await loop.create_connection(ClientConnection, host, port)
            n = next(counter)
            wire = _wire(host, port, workload.body(n))
            t0 = time.perf_counter()
            try:
                resp = await asyncio.wait_for(conn.request(wire), timeout_s)
            except (ConnectionError, TimeoutError) as e:
                if t0 >= measure_from:
                    result.fail(type(e).__name__)
                if conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            t1 = time.perf_counter()
            if t0 < measure_from:
                continue
            last_done[0] = max(last_done[0], t1)
            why = check(resp, n)
            if why is None:
                result.ok += 1
                result.latencies.append(t1 - t0)
                if workload.stream:
                    result.ttfts.append(resp.t_first - t0)
            else:
                result.fail(why)
            if b"connection: close" in resp.head and conn.transport is not None:
                conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    result.window_s = max(duration_s, last_done[0] - measure_from)
    return result


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (NaN when empty)."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100.0 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]
