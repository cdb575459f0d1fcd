"""Canonical conversation text fed to analysis (interim until the hot path lands)."""

from __future__ import annotations

from typing import Any

from fastroute.chat_request import message_text


def conversation_text(messages: list[dict[str, Any]], *, tools: bool = False, json_mode: bool = False) -> str:
    parts = [f"<{m.get('role')}> {message_text(m)}" for m in messages]
    if tools:
        parts.append("<tools>")
    if json_mode:
        parts.append("<json>")
    return "\n".join(parts)
