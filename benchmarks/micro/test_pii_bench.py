"""PII scanning: native one-pass scanner vs Python `re` doing the same patterns and checks (MB/s), and the
false-positive rate on ordinary prompts (the routing data; skipped when /work/shared is absent).

Run: `pytest benchmarks/micro/test_pii_bench.py --benchmark-enable -s`.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fastroute.governance.pii import PiiScanner

ROUTING = Path("/work/shared/data/routing")

# The native scanner's patterns, in Python `re` syntax, combined the same way (one alternation).
_PY_PATTERNS = {
    "secret": r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----"
    r"|-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----|\bsk-(?:proj-|ant-|live-)?[A-Za-z0-9_\-]{20,}"
    r"|\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36,255}"
    r"|\bgithub_pat_[A-Za-z0-9_]{22,255}|\bxox[abposr]-[A-Za-z0-9\-]{10,}|\bAIza[0-9A-Za-z_\-]{35}"
    r"|\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
    # The lookbehind gives `re` the native scanner's leftmost start without retrying inside every word.
    "email": r"(?<![\w.%+\-])[\w.%+\-]+@\w(?:[\w\-]*\w)?(?:\.\w(?:[\w\-]*\w)?)*\.[^\W\d_]{2,24}\b",
    "iban": r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
    "credit_card": r"\b(?:[0-9]{13,19}|[0-9]{4}[ \-][0-9]{4}[ \-][0-9]{4}[ \-][0-9]{1,7}"
    r"|[0-9]{4}[ \-][0-9]{6}[ \-][0-9]{4,5})\b",
    "ssn": r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b",
    "phone": r"(?:\+[0-9]{1,3}[ .\-]?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,4}(?:[ .\-]?[0-9]{2,4}){1,5}"
    r"|(?:\([0-9]{3}\) ?|\b[0-9]{3}[.\- ])[0-9]{3}[.\- ][0-9]{4})\b",
    "ipv6": r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|\b(?:[0-9A-Fa-f]{1,4}:){1,7}:"
    r"(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?|\b::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})",
    "ipv4": r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b",
}
_PY_RE = re.compile("|".join(f"(?P<{k}>{p})" for k, p in _PY_PATTERNS.items()))


def _luhn(s: str) -> bool:
    digits = [int(c) for c in s if c.isdigit()]
    if not 13 <= len(digits) <= 19 or not 2 <= digits[0] <= 6 or (" " in s and "-" in s):
        return False
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


def _iban(s: str) -> bool:
    c = s.replace(" ", "")
    if not 15 <= len(c) <= 34:
        return False
    return int("".join(str(int(ch, 36)) for ch in c[4:] + c[:4])) % 97 == 1


def _valid(kind: str, s: str) -> bool:
    if kind == "credit_card":
        return _luhn(s)
    if kind == "iban":
        return _iban(s)
    if kind == "ssn":
        a, g, n = s.split("-")
        return a not in ("000", "666") and a[0] != "9" and g != "00" and n != "0000"
    if kind == "phone":
        n = sum(c.isdigit() for c in s)
        return 8 <= n <= 15 if s.startswith("+") else n == 10
    if kind == "ipv4":
        return all(int(o) <= 255 and (len(o) == 1 or o[0] != "0") for o in s.split("."))
    if kind == "ipv6":
        groups = [g for g in s.split(":") if g]
        try:
            ipaddress.IPv6Address(s)
        except ValueError:
            return False
        return len(groups) >= 3 or (len(groups) == 2 and any(c.isdigit() for c in s))
    return True


def py_scan(text: str) -> list[tuple[str, int, int]]:
    out = []
    pos = 0
    while True:
        m = _PY_RE.search(text, pos)
        if m is None:
            return out
        kind = m.lastgroup or ""
        if _valid(kind, m.group()):
            out.append((kind, m.start(), m.end()))
            pos = m.end()
        else:
            pos = m.start() + 1


_PY_EACH = [(k, re.compile(p)) for k, p in _PY_PATTERNS.items()]


def py_scan_each(text: str) -> list[tuple[str, int, int]]:
    """The usual pure-Python way: one `finditer` per kind, validate, then drop overlaps (earlier kind wins)."""
    found = [(m.start(), i, k, m.end()) for i, (k, rx) in enumerate(_PY_EACH) for m in rx.finditer(text)
             if _valid(k, m.group())]
    found.sort()
    out: list[tuple[str, int, int]] = []
    end = -1
    for start, _, kind, stop in found:
        if start >= end:
            out.append((kind, start, stop))
            end = stop
    return out


PII = ["jane.doe@example.com", "+44 20 7946 0958", "(415) 555-2671", "4111 1111 1111 1111",
       "DE89 3704 0044 0532 0130 00", "123-45-6789", "192.168.14.201", "2001:db8:85a3::8a2e:370:7334",
       "sk-proj-Zx8QmT4vL2pN7rK1sW9yB3cD5fG6hJ0a", "AKIAIOSFODNN7EXAMPLE"]


def corpus(size: int = 1_000_000) -> str:
    """Ordinary prompts (routing data when present, else generated prose) with a PII value every ~2 KB."""
    texts = ordinary_prompts()
    rng = random.Random(7)
    if not texts:
        words = "the model should explain why version 2.1 of the api returns 404 at 12:30 on 2024-05-01 for".split()
        texts = [" ".join(rng.choice(words) for _ in range(60)) for _ in range(200)]
    parts: list[str] = []
    n = 0
    while n < size:
        t = rng.choice(texts)
        if rng.random() < 0.3:
            t += f" Contact: {rng.choice(PII)}."
        parts.append(t)
        n += len(t) + 1
    return "\n".join(parts)


def ordinary_prompts() -> list[str]:
    out: list[str] = []
    for name in ("mmlu.jsonl", "gsm8k.jsonl", "mt_bench.jsonl"):
        path = ROUTING / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            row = json.loads(line)
            out += row.get("turns") or [row.get("prompt", "")]
    return [t for t in out if t]


TEXT = corpus()


def _mb_per_s(benchmark: Any, fn: Any) -> float:
    benchmark.extra_info["bytes"] = len(TEXT.encode())
    benchmark(fn, TEXT)
    stats = benchmark.stats.stats if benchmark.stats is not None else None
    mean = stats.mean if stats is not None else 1.0
    rate = len(TEXT.encode()) / mean / 1e6
    benchmark.extra_info["MB_per_s"] = round(rate, 1)
    print(f"\n{benchmark.name}: {rate:.1f} MB/s over {len(TEXT) / 1e6:.2f} MB")
    return rate


def test_native_scan_mb_per_s(benchmark: Any) -> None:
    scanner = PiiScanner()
    _mb_per_s(benchmark, scanner._native.scan)


def test_python_re_scan_mb_per_s(benchmark: Any) -> None:
    _mb_per_s(benchmark, py_scan)


def test_python_re_per_kind_mb_per_s(benchmark: Any) -> None:
    _mb_per_s(benchmark, py_scan_each)


def test_native_and_python_agree_on_the_corpus() -> None:
    native = Counter(k for k, _, _ in PiiScanner()._native.scan(TEXT))
    python = Counter(k for k, _, _ in py_scan(TEXT))
    assert native == python, (native, python)
    each = Counter(k for k, _, _ in py_scan_each(TEXT))
    assert each == native, (each, native)


def test_false_positive_rate_on_routing_prompts() -> None:
    prompts = ordinary_prompts()
    if not prompts:
        pytest.skip("routing data (/work/shared/data/routing) is absent")
    scanner = PiiScanner()
    t0 = time.perf_counter()
    flagged: Counter[str] = Counter()
    hit_prompts = 0
    examples: dict[str, str] = {}
    for p in prompts:
        found = scanner.scan(p)
        if found:
            hit_prompts += 1
        for f in found:
            flagged[f.kind] += 1
            examples.setdefault(f.kind, p[max(0, f.start - 20): f.end + 20].replace("\n", " "))
    elapsed = time.perf_counter() - t0
    rate = hit_prompts / len(prompts)
    print(f"\nfalse positives: {hit_prompts}/{len(prompts)} prompts ({rate:.3%}) by kind {dict(flagged)}; "
          f"scanned in {elapsed * 1000:.0f} ms")
    for kind, ex in examples.items():
        print(f"  {kind}: ...{ex}...")
    assert rate < 0.02


def test_native_redact_one_typical_prompt(benchmark: Any) -> None:
    """Per-request cost: one ~600-character prompt with one e-mail address."""
    scanner = PiiScanner()
    prompt = ("Please summarise the attached quarterly report and draft a reply to finance@example.com "
              "explaining the variance in Q3 operating costs. " * 5)
    out, kinds = benchmark(scanner.redact, prompt)
    assert kinds and "finance@example.com" not in out
