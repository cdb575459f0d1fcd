"""The native PII scanner contract: kinds, str offsets, typed placeholders, extra patterns, errors."""

from __future__ import annotations

import itertools
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastroute import _native
from fastroute.governance.pii import BUILTIN_KINDS, PiiScanner, screen_messages
from fastroute.governance.policy import PiiPattern

SCANNER = _native.PiiScanner()


def test_builtin_kinds_match_the_python_side() -> None:
    assert tuple(SCANNER.kinds) == BUILTIN_KINDS


def test_offsets_are_str_offsets_even_after_non_ascii() -> None:
    text = "Grüße 👋 — schreib an anna.müller@example.de? nein: anna@example.de, Karte 4111111111111111"
    found = SCANNER.scan(text)
    assert [k for k, _, _ in found] == ["email", "email", "credit_card"]
    assert [text[s:e] for _, s, e in found] == ["anna.müller@example.de", "anna@example.de", "4111111111111111"]


def test_redact_uses_typed_placeholders() -> None:
    out, kinds = SCANNER.redact("ssn 123-45-6789, ip 10.0.0.12, key AKIAIOSFODNN7EXAMPLE")
    assert out == "ssn [SSN], ip [IPV4], key [SECRET]"
    assert kinds == ["ssn", "ipv4", "secret"]
    many = SCANNER.redact_many(["nothing here", "x@y.org"])
    assert many == [("nothing here", []), ("[EMAIL]", ["email"])]


def test_extra_patterns_and_invalid_ones() -> None:
    scanner = PiiScanner([PiiPattern("employee_id", r"EMP-[0-9]{6}")])
    assert scanner.redact("EMP-004211 asked") == ("[EMPLOYEE_ID] asked", ["employee_id"])
    with pytest.raises(ValueError, match="employee_id"):
        PiiScanner([PiiPattern("employee_id", r"EMP-([0-9]")])


def test_screen_messages_redacts_every_text_slot_in_place() -> None:
    messages = [
        {"role": "system", "content": "Escalate to boss@corp.io"},
        {"role": "user", "content": [{"type": "text", "text": "my card 4111 1111 1111 1111"},
                                     {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c", "type": "function",
                         "function": {"name": "f", "arguments": '{"phone": "+1 415 555 2671"}'}}]},
    ]
    kinds = screen_messages(PiiScanner(), messages, redact=True)
    assert kinds == ["credit_card", "email", "phone"]
    assert messages[0]["content"] == "Escalate to [EMAIL]"
    assert messages[1]["content"][0]["text"] == "my card [CREDIT_CARD]"
    assert messages[2]["tool_calls"][0]["function"]["arguments"] == '{"phone": "[PHONE]"}'


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_redaction_is_idempotent_and_spans_are_in_bounds(text: str) -> None:
    found = SCANNER.scan(text)
    assert all(0 <= s < e <= len(text) for _, s, e in found)
    assert all(a[2] <= b[1] for a, b in itertools.pairwise(found))
    once, _ = SCANNER.redact(text)
    assert SCANNER.redact(once) == (once, [])


def test_scans_in_parallel_threads() -> None:
    text = "reach me at a.b@c.io or +33 1 23 45 67 89. " * 2000
    results: list[int] = []

    def run() -> None:
        results.append(len(SCANNER.scan(text)))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [4000] * 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), st.sampled_from(["x@y.org", "10.0.0.1 and 4111111111111111", "é 👋"])),
                max_size=6))
def test_redact_found_is_redact_many_without_the_clean_texts(texts: list[str]) -> None:
    expected = [(i, out, kinds) for i, (out, kinds) in enumerate(SCANNER.redact_many(texts)) if kinds]
    assert SCANNER.redact_found(texts) == expected


def test_redact_found_on_long_texts_releases_the_gil_and_answers_the_same() -> None:
    texts = ["clean " * 1000, "write to x@y.org " * 300, "é 👋 " * 2000]  # > 4 KB: scanned without the GIL
    expected = [(i, out, kinds) for i, (out, kinds) in enumerate(SCANNER.redact_many(texts)) if kinds]
    assert SCANNER.redact_found(texts) == expected and [i for i, _, _ in expected] == [1]


def test_redact_found_takes_only_str() -> None:
    assert SCANNER.redact_found([]) == []
    with pytest.raises(TypeError):
        SCANNER.redact_found("x@y.org")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SCANNER.redact_found([b"x@y.org"])  # type: ignore[list-item]
