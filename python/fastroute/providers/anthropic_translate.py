"""Pure translation between OpenAI chat-completions and Anthropic Messages (requests, answers, stream events).

Pure: no I/O, no aiohttp. Stateless functions plus `StreamTranslator`, which carries one stream's state.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from fastroute.catalogue import ModelEntry
from fastroute.chat_request import ChatRequest

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI content (string or parts) to Anthropic content blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content or []:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            if url.startswith("data:") and ";base64," in url:
                media, data = url[5:].split(";base64,", 1)
                blocks.append({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}})
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
    return blocks


def to_anthropic_request(model: ModelEntry, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """Builds a Messages API body: system prompts hoisted, roles alternated, tools and stops mapped."""
    body = request.body
    system_parts: list[str] = []
    messages: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for msg in request.messages:
        role = msg["role"]
        if role in ("system", "developer"):
            system_parts.append(_text_of(msg.get("content")))
        elif role == "user":
            push("user", _blocks(msg.get("content")))
        elif role == "assistant":
            blocks = _blocks(msg.get("content"))
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                try:
                    args = orjson.loads(fn.get("arguments") or "{}")
                except orjson.JSONDecodeError:
                    args = {"_raw": fn.get("arguments")}
                blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": fn.get("name", ""), "input": args})
            push("assistant", blocks)
        elif role in ("tool", "function"):
            push(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": msg.get("tool_call_id", ""),
                        "content": _text_of(msg.get("content")),
                    }
                ],
            )
    if not messages or messages[0]["role"] != "user":
        messages.insert(0, {"role": "user", "content": [{"type": "text", "text": "(continue)"}]})

    out: dict[str, Any] = {
        "model": model.upstream_model,
        "messages": messages,
        "max_tokens": request.max_tokens or model.max_output_tokens,
    }
    if system_parts:
        out["system"] = "\n\n".join(p for p in system_parts if p)
    if request.temperature is not None:
        out["temperature"] = min(1.0, request.temperature)
    if isinstance(body.get("top_p"), (int, float)):
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = body.get("tools")
    if tools:
        out["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for t in tools
            if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict)
        ]
        choice = body.get("tool_choice")
        if choice == "required":
            out["tool_choice"] = {"type": "any"}
        elif choice == "none":
            out["tool_choice"] = {"type": "none"}
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            out["tool_choice"] = {"type": "tool", "name": choice["function"].get("name", "")}
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if stream:
        out["stream"] = True
    return out


def from_anthropic_response(data: dict[str, Any], client_model: str) -> dict[str, Any]:
    """A Messages API answer as an OpenAI `chat.completion`."""
    text: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in data.get("content") or []:
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": orjson.dumps(block.get("input", {})).decode(),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = data.get("usage") or {}
    prompt = (
        int(usage.get("input_tokens", 0))
        + int(usage.get("cache_read_input_tokens", 0) or 0)
        + int(usage.get("cache_creation_input_tokens", 0) or 0)
    )
    completion = int(usage.get("output_tokens", 0))
    return {
        "id": f"chatcmpl-{data.get('id', '')}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model", client_model),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": STOP_REASONS.get(data.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


class StreamTranslator:
    """Maps Anthropic stream events to OpenAI chunk dicts for one stream."""

    def __init__(self, client_model: str) -> None:
        self.id = "chatcmpl-"
        self.model = client_model
        self.created = int(time.time())
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.finished = False
        self._tool_index: dict[int, int] = {}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def usage_chunk(self) -> dict[str, Any]:
        p, c = self.prompt_tokens, self.completion_tokens
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        }

    def translate(self, event: str | None, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Returns the OpenAI chunks for one event (often none). Raises `ValueError` on an error event."""
        kind = data.get("type", event)
        if kind == "message_start":
            msg = data.get("message") or {}
            self.id = f"chatcmpl-{msg.get('id', '')}"
            self.model = msg.get("model", self.model)
            usage = msg.get("usage") or {}
            self.prompt_tokens = int(usage.get("input_tokens", 0))
            self.completion_tokens = int(usage.get("output_tokens", 0))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                idx = len(self._tool_index)
                self._tool_index[int(data.get("index", 0))] = idx
                return [
                    self._chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": idx,
                                    "id": block.get("id", ""),
                                    "type": "function",
                                    "function": {"name": block.get("name", ""), "arguments": ""},
                                }
                            ]
                        }
                    )
                ]
            text = block.get("text")
            return [self._chunk({"content": text})] if text else []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                idx = self._tool_index.get(int(data.get("index", 0)), 0)
                return [
                    self._chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": idx,
                                    "function": {"arguments": delta.get("partial_json", "")},
                                }
                            ]
                        }
                    )
                ]
            return []
        if kind == "message_delta":
            usage = data.get("usage") or {}
            if "output_tokens" in usage:
                self.completion_tokens = int(usage["output_tokens"])
            if usage.get("input_tokens"):
                self.prompt_tokens = int(usage["input_tokens"])
            reason = (data.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, STOP_REASONS.get(reason or "", "stop"))] if reason else []
        if kind == "message_stop":
            self.finished = True
            return []
        if kind == "error":
            err = data.get("error") or {}
            raise ValueError(f"{err.get('type', 'error')}: {err.get('message', 'upstream stream error')}")
        return []  # ping, content_block_stop, unknown future events
