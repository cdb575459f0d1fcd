"""Server-sent-event framing for OpenAI chunk streams, and replaying a whole answer as a stream.

Pure: must not import aiohttp.
"""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def frame(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def cost_comment(cost_usd: float) -> bytes:
    """An SSE comment (ignored by clients) carrying the final cost of a stream."""
    return f": x-fastroute-cost-usd={cost_usd:.8f}\n\n".encode()


def error_frame(message: str, error_type: str, code: str | None) -> bytes:
    """The event the `openai` client turns into an exception mid-stream."""
    return frame({"error": {"message": message, "type": error_type, "param": None, "code": code}})


def completion_to_chunks(body: dict[str, Any], *, include_usage: bool, piece_chars: int = 64) -> list[dict[str, Any]]:
    """Replays a `chat.completion` as the chunks a live stream would have sent."""
    base = {
        "id": body.get("id", "chatcmpl-replay"),
        "object": "chat.completion.chunk",
        "created": body.get("created", 0),
        "model": body.get("model", ""),
    }
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content = message.get("content") or ""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": content[i : i + piece_chars]}) for i in range(0, len(content), piece_chars)]
    if message.get("tool_calls"):
        calls = [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]
        chunks.append(chunk({"tool_calls": calls}))
    chunks.append(chunk({}, choice.get("finish_reason") or "stop"))
    if include_usage and body.get("usage"):
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    return chunks


def chunk_text(data: dict[str, Any]) -> str:
    """The content text a chunk carries (for accounting what was actually streamed)."""
    choices = data.get("choices")
    if not choices:
        return ""
    delta = choices[0].get("delta") or {}
    text = delta.get("content")
    return text if isinstance(text, str) else ""
