"""The canonical conversation text: the one string every prompt analysis, cache key and training row is built from.

Pure: no I/O, no native code. The gateway, the cache and the training pipeline all call
`conversation_text`, so the text the classifier was trained on is exactly the text it scores (no
train/serve skew).

Format, one segment per line start::

    <system> You are terse.
    <user> What is 2+2?
    <assistant> 4
    <tool_call> add {"a": 2, "b": 2}
    <tool> 4
    <user:alice> Thanks!
    <image_url>
    <tools>
    <json>

- Each message is `<role> ` + its content, where role is the message's `role` (lower-cased, reduced to
  `[a-z0-9_]`, `unknown` if empty, prefixed with `r` unless it starts with a letter), extended by
  `:name` when the message carries a `name` (reduced to `[a-z0-9_.-]`).
- String content is used as is; list content joins its `text` parts with newlines, and every other part
  becomes its own marker line named after the part's type (e.g. `<image_url>`), without its payload.
- Each assistant tool call adds a line `<tool_call> {name} {arguments}`.
- `<tools>` (the request offers tools) and `<json>` (JSON mode) close the text when set.
- Markers are unforgeable: inside content, a line that starts with `<` gets one more `<` (`<user>` typed
  by a user becomes `<<user>`), so a marker can only come from the structure. `fastroute._native`'s exact
  key relies on this (see `rust/src/normalize.rs`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["USER_MARKER", "conversation_text", "escape_content"]

USER_MARKER = "<user> "
"""Prefix of a user turn's line (the cache splits context from the last user turn on it)."""

_ROLE_CHARS = re.compile(r"[^a-z0-9_]+")
_NAME_CHARS = re.compile(r"[^a-z0-9_.\-]+")


def escape_content(text: str) -> str:
    """Content as it appears in the conversation text: every line starting with `<` gets one more `<`."""
    return text.replace("\n<", "\n<<") if "\n<" in text else text


# The usual roles, already clean: their markers need no regex (they are most of every conversation).
_PLAIN_MARKERS = {r: f"<{r}>" for r in ("system", "developer", "user", "assistant", "tool", "function")}


def _marker(message: Mapping[str, Any]) -> str:
    role = message.get("role")
    if not message.get("name"):
        plain = _PLAIN_MARKERS.get(role) if isinstance(role, str) else None
        if plain is not None:
            return plain
    role = _ROLE_CHARS.sub("", str(role or "").lower()) or "unknown"
    if not "a" <= role[0] <= "z":
        role = "r" + role  # a marker starts with a letter
    name = message.get("name")
    if isinstance(name, str) and name:
        cleaned = _NAME_CHARS.sub("", name.lower())
        if cleaned:
            return f"<{role}:{cleaned}>"
    return f"<{role}>"


def _part_type(part: Mapping[str, Any]) -> str:
    return _ROLE_CHARS.sub("", str(part.get("type") or "").lower()) or "part"


def _content_lines(content: Any) -> tuple[str, list[str]]:
    """(text of the message, extra marker lines for its non-text parts)."""
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        return "", []
    texts: list[str] = []
    markers: list[str] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            text = part.get("text")
            if isinstance(text, str):
                texts.append(text)
        else:
            markers.append(f"<{_part_type(part)}>")
    return "\n".join(texts), markers


def _tool_call_lines(calls: Any) -> Iterable[str]:
    if not isinstance(calls, list):
        return
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        name = function.get("name")
        arguments = function.get("arguments")
        text = f"{name if isinstance(name, str) else ''} {arguments if isinstance(arguments, str) else ''}"
        yield "<tool_call> " + escape_content(text.strip())


def conversation_text(messages: list[dict[str, Any]], *, tools: bool = False, json_mode: bool = False) -> str:
    """The canonical text of a chat conversation (format in the module docstring).

    Args:
        messages: OpenAI chat messages (system/developer/user/assistant/tool), as parsed from the request;
            malformed entries contribute what they can and never raise.
        tools: the request offers tools (adds a `<tools>` line).
        json_mode: the request asks for JSON output (adds a `<json>` line).

    Returns:
        One string: the input of `PromptAnalyzer.analyze`, the source of the exact-cache key and of the
        classifier features.
    """
    lines: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        text, part_markers = _content_lines(message.get("content"))
        lines.append(f"{_marker(message)} {escape_content(text)}")
        lines.extend(part_markers)
        lines.extend(_tool_call_lines(message.get("tool_calls")))
    if tools:
        lines.append("<tools>")
    if json_mode:
        lines.append("<json>")
    return "\n".join(lines)
