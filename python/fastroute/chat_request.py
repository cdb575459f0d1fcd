"""Parses and validates an OpenAI chat-completions request body into a `ChatRequest`.

Pure: must not import aiohttp. Every problem raises `InvalidRequest` naming the offending `param`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from fastroute.errors import InvalidRequest, MalformedJSON

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
AUTO_MODEL = "auto"


@dataclass(slots=True)
class ChatRequest:
    """A validated request. `body` is the client's JSON, forwarded upstream with `model` replaced."""

    body: dict[str, Any]
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    max_tokens: int | None
    temperature: float | None
    include_usage: bool
    uses_tools: bool
    json_mode: bool

    @property
    def wants_auto(self) -> bool:
        return self.model == AUTO_MODEL


def parse_json_body(raw: bytes) -> Any:
    """Decodes a JSON body; malformed JSON or invalid UTF-8 raises `MalformedJSON`."""
    if not raw:
        raise MalformedJSON("The request body is empty; expected a JSON object.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise MalformedJSON(f"The request body is not valid JSON: {e}") from e


def parse_chat_request(data: Any) -> ChatRequest:
    """Validates a decoded body. Unknown fields are kept and forwarded untouched."""
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = data.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string.", param="model")
    messages = _messages(data.get("messages"))
    stream = _opt_bool(data, "stream") or False
    max_tokens = _opt_pos_int(data, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _opt_pos_int(data, "max_tokens")
    temperature = _opt_number(data, "temperature", 0.0, 2.0)
    _opt_number(data, "top_p", 0.0, 1.0)
    n = _opt_pos_int(data, "n")
    if n is not None and n > 1:
        raise InvalidRequest("Only n=1 is supported.", param="n")
    stop = data.get("stop")
    if (
        stop is not None
        and not isinstance(stop, str)
        and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise InvalidRequest("'stop' must be a string or a list of strings.", param="stop")
    stream_options = data.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
    include_usage = bool(stream_options and stream_options.get("include_usage") is True)
    tools = data.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequest("'tools' must be a list.", param="tools")
    response_format = data.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise InvalidRequest("'response_format' must be an object.", param="response_format")
    json_mode = bool(response_format and response_format.get("type") in ("json_object", "json_schema"))
    return ChatRequest(
        body=data,
        model=model.strip(),
        messages=messages,
        stream=stream,
        max_tokens=max_tokens,
        temperature=temperature,
        include_usage=include_usage,
        uses_tools=bool(tools),
        json_mode=json_mode,
    )


def _messages(value: Any) -> list[dict[str, Any]]:
    if value is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(value, list):
        raise InvalidRequest("'messages' must be a list of message objects.", param="messages")
    if not value:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages")
    for i, msg in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise InvalidRequest(f"'{where}' must be an object.", param=where)
        role = msg.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise InvalidRequest(f"'{where}.role' must be one of {', '.join(sorted(ROLES))}.", param=f"{where}.role")
        content = msg.get("content")
        if content is None:
            if role != "assistant":
                raise InvalidRequest(f"'{where}.content' is required.", param=f"{where}.content")
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise InvalidRequest(
                        f"'{where}.content[{j}]' must be an object with a 'type'.",
                        param=f"{where}.content[{j}]",
                    )
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise InvalidRequest(
                        f"'{where}.content[{j}].text' must be a string.", param=f"{where}.content[{j}].text"
                    )
        elif not isinstance(content, str):
            raise InvalidRequest(
                f"'{where}.content' must be a string or a list of content parts.", param=f"{where}.content"
            )
    return value


def _opt_bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{key}' must be a boolean.", param=key)
    return value


def _opt_pos_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(f"'{key}' must be a positive integer.", param=key)
    if value > 10_000_000:
        raise InvalidRequest(f"'{key}' is too large.", param=key)
    return value


def _opt_number(data: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(f"'{key}' must be a number.", param=key)
    if not low <= value <= high:
        raise InvalidRequest(f"'{key}' must be between {low:g} and {high:g}.", param=key)
    return float(value)


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one message (string content, or its text parts joined)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if p.get("type") == "text" and isinstance(p.get("text"), str))
    return ""
