"""SSE framing and replaying a whole answer as a stream."""

from __future__ import annotations

from fastroute.server.sse import chunk_text, completion_to_chunks

BODY = {
    "id": "c1", "created": 5, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * 150}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 40, "total_tokens": 43},
}


def test_replay_rebuilds_the_same_text_and_finish() -> None:
    chunks = completion_to_chunks(BODY, include_usage=False)
    assert "".join(chunk_text(c) for c in chunks) == "x" * 150
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "c1" for c in chunks)


def test_replay_adds_usage_only_when_asked() -> None:
    assert completion_to_chunks(BODY, include_usage=True)[-1]["usage"]["total_tokens"] == 43
    assert "usage" not in completion_to_chunks(BODY, include_usage=False)[-1]
