"""Per-request cost of the request path outside HTTP: parse + validate, upstream payload, response bytes.

Run: `pytest benchmarks/micro/test_request_bench.py --benchmark-enable`. Each fastroute case sits beside
its pure-Python baseline (stdlib `json` with the same validation), on a short chat and on a 20-turn
conversation with a tool schema (~9 KB).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from fastroute.catalogue import ModelEntry
from fastroute.chat_request import parse_chat_request, parse_json_body
from fastroute.providers.openai_compat import OpenAICompatProvider
from fastroute.simulator.demo import demo_catalogue

CATALOGUE = demo_catalogue("http://127.0.0.1:1")
MODEL: ModelEntry = CATALOGUE.models["sim-budget"]
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order by id and return its status, items and delivery estimate.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "include_items": {"type": "boolean"}},
            "required": ["order_id"],
        },
    },
}


def short_chat() -> dict[str, Any]:
    return {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France, and how many people live there?"},
        ],
        "temperature": 0.2,
        "max_tokens": 256,
    }


def long_chat() -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a support agent for an online shop."}]
    for i in range(10):
        messages.append({"role": "user", "content": f"Question {i}: where is my order 10{i}? " + "details " * 40})
        messages.append({"role": "assistant", "content": f"Order 10{i} ships tomorrow. " + "context " * 40})
    return {"model": "auto", "messages": messages, "tools": [TOOL], "stream": True, "max_tokens": 512}


def completion() -> dict[str, Any]:
    text = "Paris is the capital of France; about 2.1 million people live in the city itself. " * 4
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "sim-budget-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 31, "completion_tokens": 88, "total_tokens": 119},
    }


BODIES = {"short": orjson.dumps(short_chat()), "long": orjson.dumps(long_chat())}


@pytest.fixture(params=sorted(BODIES))
def raw(request: pytest.FixtureRequest) -> bytes:
    return BODIES[str(request.param)]


def test_parse_validate_orjson(benchmark: Any, raw: bytes) -> None:
    chat = benchmark(lambda: parse_chat_request(parse_json_body(raw)))
    assert chat.messages


def test_parse_validate_stdlib_json_baseline(benchmark: Any, raw: bytes) -> None:
    chat = benchmark(lambda: parse_chat_request(json.loads(raw)))
    assert chat.messages


def _provider() -> OpenAICompatProvider:
    return OpenAICompatProvider(CATALOGUE.providers["sim-openai"], pool=None, api_key=None)  # type: ignore[arg-type]


def test_upstream_payload_orjson(benchmark: Any, raw: bytes) -> None:
    chat = parse_chat_request(parse_json_body(raw))
    provider = _provider()
    payload = benchmark(lambda: provider._payload(MODEL, chat, stream=chat.stream))
    assert orjson.loads(payload)["model"] == MODEL.upstream_model


def test_upstream_payload_stdlib_json_baseline(benchmark: Any, raw: bytes) -> None:
    chat = parse_chat_request(parse_json_body(raw))

    def payload() -> bytes:
        body = dict(chat.body)
        body["model"] = MODEL.upstream_model
        if chat.stream:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return json.dumps(body, separators=(",", ":")).encode()

    assert json.loads(benchmark(payload))["model"] == MODEL.upstream_model


def test_answer_roundtrip_orjson(benchmark: Any) -> None:
    upstream = orjson.dumps(completion())
    out = benchmark(lambda: orjson.dumps(orjson.loads(upstream)))
    assert orjson.loads(out)["choices"]


def test_answer_roundtrip_stdlib_json_baseline(benchmark: Any) -> None:
    upstream = json.dumps(completion()).encode()
    out = benchmark(lambda: json.dumps(json.loads(upstream), separators=(",", ":")).encode())
    assert json.loads(out)["choices"]
