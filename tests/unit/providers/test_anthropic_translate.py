"""OpenAI <-> Anthropic Messages translation: requests, answers and stream events."""

from __future__ import annotations

import orjson
import pytest

from fastroute.catalogue import ModelEntry
from fastroute.chat_request import parse_chat_request
from fastroute.providers.anthropic_translate import StreamTranslator, from_anthropic_response, to_anthropic_request

MODEL = ModelEntry("claude", "anthropic", "claude-x", "frontier", 3e-6, 1.5e-5, 200_000, 8192)


def test_request_hoists_system_merges_roles_and_maps_tools() -> None:
    req = parse_chat_request(
        {
            "model": "claude",
            "messages": [
                {"role": "system", "content": "A"},
                {"role": "developer", "content": "B"},
                {"role": "user", "content": "q1"},
                {"role": "user", "content": [{"type": "text", "text": "q2"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "t1", "type": "function", "function": {"name": "get", "arguments": '{"x": 1}'}}
                    ],
                },
                {"role": "tool", "tool_call_id": "t1", "content": "42"},
            ],
            "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "stop": ["X", "Y"],
            "max_tokens": 99,
        }
    )
    out = to_anthropic_request(MODEL, req, stream=True)
    assert out["system"] == "A\n\nB"
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert [b["text"] for b in out["messages"][0]["content"]] == ["q1", "q2"]
    assert out["messages"][1]["content"][0] == {"type": "tool_use", "id": "t1", "name": "get", "input": {"x": 1}}
    assert out["messages"][2]["content"][0]["type"] == "tool_result"
    assert out["tools"][0]["input_schema"] == {"type": "object"}
    assert out["tool_choice"] == {"type": "any"}
    assert out["stop_sequences"] == ["X", "Y"]
    assert out["max_tokens"] == 99 and out["stream"] is True


def test_max_tokens_defaults_to_model_limit() -> None:
    req = parse_chat_request({"model": "claude", "messages": [{"role": "user", "content": "hi"}]})
    assert to_anthropic_request(MODEL, req, stream=False)["max_tokens"] == 8192


@pytest.mark.parametrize(
    ("stop", "finish"), [("end_turn", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls")]
)
def test_response_maps_content_usage_and_stop_reason(stop: str, finish: str) -> None:
    body = from_anthropic_response(
        {
            "id": "msg_1",
            "model": "claude-x",
            "stop_reason": stop,
            "content": [
                {"type": "text", "text": "Hello"},
                {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 2}},
            ],
            "usage": {"input_tokens": 10, "output_tokens": 4},
        },
        "claude",
    )
    choice = body["choices"][0]
    assert choice["finish_reason"] == finish
    assert choice["message"]["content"] == "Hello"
    assert orjson.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"a": 2}
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


def test_stream_events_become_openai_chunks() -> None:
    tr = StreamTranslator("claude")
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {"id": "m1", "model": "claude-x", "usage": {"input_tokens": 7, "output_tokens": 1}},
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "f"}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a"'}},
        ),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    chunks = [c for name, data in events for c in tr.translate(name, data)]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["delta"] == {"content": "Hi"}
    assert chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "f"
    assert chunks[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == '{"a"'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["id"] == "chatcmpl-m1" for c in chunks)
    assert tr.finished and (tr.prompt_tokens, tr.completion_tokens) == (7, 9)
    assert tr.usage_chunk()["usage"]["total_tokens"] == 16


def test_stream_error_event_raises() -> None:
    with pytest.raises(ValueError, match="overloaded"):
        StreamTranslator("c").translate(
            "error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
        )
