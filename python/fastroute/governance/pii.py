"""Typed wrapper over the native PII scanner, and redaction of a chat request's message texts in place.

Must not decide policy: it finds and replaces; `stages.PiiStage` decides what to do with the findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastroute import _native
from fastroute.governance.policy import PiiPattern

BUILTIN_KINDS: tuple[str, ...] = ("secret", "email", "iban", "credit_card", "ssn", "phone", "ipv6", "ipv4")


@dataclass(frozen=True, slots=True)
class PiiFinding:
    kind: str
    start: int
    end: int


class PiiScanner:
    """One compiled scanner (built-in kinds + a policy's extra patterns); thread-safe, GIL released."""

    def __init__(self, extra: Sequence[PiiPattern] = ()) -> None:
        self._native = _native.PiiScanner([(p.name, p.regex) for p in extra])

    @property
    def kinds(self) -> list[str]:
        return self._native.kinds

    def scan(self, text: str) -> list[PiiFinding]:
        return [PiiFinding(k, s, e) for k, s, e in self._native.scan(text)]

    def redact(self, text: str) -> tuple[str, list[str]]:
        """`text` with typed placeholders (`[EMAIL]`...), and the kinds found."""
        return self._native.redact(text)

    def redact_many(self, texts: list[str]) -> list[tuple[str, list[str]]]:
        return self._native.redact_many(texts)


def message_texts(messages: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str | int, str]]:
    """Every text a provider would see: (container, key, text) for string contents, text parts and
    tool-call arguments, so redaction can write back in place."""
    out: list[tuple[dict[str, Any], str | int, str]] = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str):
            out.append((msg, "content", content))
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                    out.append((part, "text", part["text"]))
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                out.append((fn, "arguments", fn["arguments"]))
    return out


Slots = list[tuple[dict[str, Any], str | int, str]]


def screen_messages(
    scanner: PiiScanner, messages: list[dict[str, Any]], *, redact: bool, slots: Slots | None = None
) -> list[str]:
    """Kinds found across all messages (sorted, unique); with `redact`, texts are replaced in place.
    `slots`: `message_texts(messages)` when the caller already has it."""
    if slots is None:
        slots = message_texts(messages)
    if not slots:
        return []
    results = scanner.redact_many([text for _, _, text in slots])
    kinds: set[str] = set()
    for (container, key, _), (new_text, found) in zip(slots, results, strict=True):
        if found:
            kinds.update(found)
            if redact:
                container[key] = new_text  # type: ignore[index]
    return sorted(kinds)
