"""A fake OpenAI chat-completions upstream that does no work but answering, as fast as CPython allows.

Raw asyncio protocol on uvloop (no framework): HTTP/1.1 keep-alive, plain JSON or SSE (chunked) answers.
The answer echoes the request's nonce (`[n:123]` in the last message) so the load driver can check that
every response belongs to its request. Loopback only; benchmark tooling, not product code.

    python benchmarks/load/fake_upstream.py --port 0        # prints "listening <port>"
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from typing import Any

import orjson
import uvloop

NONCE = re.compile(rb"\[n:(\d+)\]")
PIECES = 4  # content chunks per streamed answer

_HEALTH = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"ok"}'
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def answer_text(nonce: bytes) -> str:
    """The deterministic answer for a nonce; the driver checks for exactly this text."""
    return f"Answer to n:{nonce.decode()}. The fake upstream echoes the nonce so mix-ups are caught."


def completion(model: str, nonce: bytes) -> dict[str, Any]:
    text = answer_text(nonce)
    return {
        "id": "chatcmpl-fake" + nonce.decode(),
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 42, "completion_tokens": 21, "total_tokens": 63},
    }


def stream_events(model: str, nonce: bytes, include_usage: bool) -> list[bytes]:
    """The SSE events, one HTTP chunk each, ending with `[DONE]`."""
    text = answer_text(nonce)
    base = {
        "id": "chatcmpl-fake" + nonce.decode(),
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
    }
    step = -(-len(text) // PIECES)
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
    deltas += [({"content": text[i : i + step]}, None) for i in range(0, len(text), step)]
    deltas.append(({}, "stop"))
    events = [orjson.dumps({**base, "choices": [{"index": 0, "delta": d, "finish_reason": f}]}) for d, f in deltas]
    if include_usage:
        events.append(
            orjson.dumps(
                {**base, "choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 21, "total_tokens": 63}}
            )
        )
    events.append(b"[DONE]")
    return [b"data: " + e + b"\n\n" for e in events]


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: parses pipelined-or-not requests by Content-Length and answers each."""

    def __init__(self, chunk_delay_s: float) -> None:
        self._buf = bytearray()
        self._delay = chunk_delay_s
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(buf) < total:
                return
            body = bytes(buf[end + 4 : total])
            del buf[:total]
            self._answer(head, body)

    def _answer(self, head: bytes, body: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        if head.startswith(b"get /healthz"):
            transport.write(_HEALTH)
            return
        if not head.startswith(b"post /v1/chat/completions"):
            transport.write(_NOT_FOUND)
            return
        try:
            req = orjson.loads(body)
        except orjson.JSONDecodeError:
            transport.write(_BAD)
            transport.close()
            return
        found = NONCE.findall(body)
        nonce = found[-1] if found else b"0"
        model = str(req.get("model", "fake"))
        if req.get("stream"):
            options = req.get("stream_options") or {}
            events = stream_events(model, nonce, bool(options.get("include_usage")))
            if self._delay <= 0:
                transport.write(_SSE_HEAD + b"".join(http_chunk(e) for e in events) + b"0\r\n\r\n")
            else:
                transport.write(_SSE_HEAD + http_chunk(events[0]))
                loop = asyncio.get_running_loop()
                for i, event in enumerate(events[1:], start=1):
                    loop.call_later(self._delay * i, self._write, http_chunk(event))
                loop.call_later(self._delay * len(events), self._write, b"0\r\n\r\n")
            return
        payload = orjson.dumps(completion(model, nonce))
        transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(payload), payload)
        )

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)


async def serve(host: str, port: int, chunk_delay_s: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(chunk_delay_s), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="gap between streamed chunks")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port, args.chunk_delay_ms / 1000.0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
