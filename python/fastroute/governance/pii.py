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

    def redact_found(self, texts: list[str]) -> list[tuple[int, str, list[str]]]:
        """`redact_many` for the texts with findings only: (position, redacted text, kinds); `[]` when clean."""
        return self._native.redact_found(texts)


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
        calls = msg.get("tool_calls")
        if calls:
            for call in calls:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    out.append((fn, "arguments", fn["arguments"]))
    return out


Slots = list[tuple[dict[str, Any], str | int, str]]


def screen_messages(scanner: PiiScanner, messages: list[dict[str, Any]], *, redact: bool) -> list[str]:
    """Kinds found across all messages (sorted, unique); with `redact`, texts are replaced in place."""
    slots = message_texts(messages)
    if not slots:
        return []
    return screen_texts(scanner, slots, [text for _, _, text in slots], redact=redact)


def screen_texts(scanner: PiiScanner, slots: Slots, texts: list[str], *, redact: bool) -> list[str]:
    """`screen_messages` for `slots` whose texts the caller already listed (`texts[i]` is `slots[i]`'s)."""
    found = scanner.redact_found(texts)
    if not found:  # the common case: one native call, nothing copied back
        return []
    kinds: set[str] = set()
    for i, new_text, found_kinds in found:
        kinds.update(found_kinds)
        if redact:
            container, key, _ = slots[i]
            container[key] = new_text  # type: ignore[index]
    return sorted(kinds)
