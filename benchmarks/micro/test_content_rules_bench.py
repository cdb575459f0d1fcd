"""Content rules: one native pass for 200 rules over a 2,000-token prompt, against the native prompt analysis
of the same prompt (the issue's bound: rule scanning adds no more than 20% to the analysis time).

Run: `pytest benchmarks/micro/test_content_rules_bench.py --benchmark-enable -s`.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from fastroute.compliance.scanner import RuleScanner
from fastroute.native import PromptAnalyzer

_VOCAB = (
    "the a of to and in for on with as by at from that this which model request data customer invoice report "
    "analysis contract market system quarter revenue policy team project deadline review summary please explain "
    "write code function error table value result compare between how why what when would could should"
).split()


def prompt_of(tokens: int, analyzer: PromptAnalyzer, seed: int = 7) -> str:
    """Ordinary English-like text of about `tokens` tokens (counted by the analyzer)."""
    rng = random.Random(seed)
    words: list[str] = []
    while True:
        words += [rng.choice(_VOCAB) + ("." if rng.random() < 0.06 else "") for _ in range(200)]
        text = " ".join(words)
        if analyzer.analyze(text).tokens >= tokens:
            return text


def rules_200() -> list[tuple[list[str], list[str]]]:
    """150 keyword rules (3 keywords, one a phrase) and 50 rules with a regex besides their keywords."""
    rules: list[tuple[list[str], list[str]]] = []
    for i in range(200):
        keywords = [f"codeword{i}", f"topic{i} matter", f"restricted{i}x"]
        regexes = [rf"\bCASE-{i}-[0-9]{{4}}\b"] if i % 4 == 0 else []
        rules.append((keywords, regexes))
    return rules


@pytest.fixture(scope="module")
def setup() -> tuple[PromptAnalyzer, RuleScanner, str]:
    analyzer = PromptAnalyzer()
    return analyzer, RuleScanner(rules_200()), prompt_of(2000, analyzer)


def _median_us(fn: Callable[[], Any], n: int = 400) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1e6, times[int(n * 0.99)] * 1e6


def test_analyze_2000_tokens(benchmark: Any, setup: tuple[PromptAnalyzer, RuleScanner, str]) -> None:
    analyzer, _, text = setup
    benchmark(analyzer.analyze, text)


def test_rules_200_on_2000_tokens(benchmark: Any, setup: tuple[PromptAnalyzer, RuleScanner, str]) -> None:
    _, scanner, text = setup
    assert benchmark(scanner.scan, text) == []


def test_rules_overhead_ratio(setup: tuple[PromptAnalyzer, RuleScanner, str]) -> None:
    """Interleaved rounds so both see the same machine load; prints p50/p99 and the ratio of medians."""
    analyzer, scanner, text = setup
    hit = text + " and CASE-8-1234 about topic17 matter"
    assert scanner.scan(hit) == [8, 17]
    rounds = []
    for _ in range(5):
        a = _median_us(lambda: analyzer.analyze(text))
        r = _median_us(lambda: scanner.scan(text))
        rounds.append((a, r))
    ratio = statistics.median(r[0] / a[0] for a, r in rounds)
    a50, a99 = statistics.median(a[0] for a, _ in rounds), statistics.median(a[1] for a, _ in rounds)
    r50, r99 = statistics.median(r[0] for _, r in rounds), statistics.median(r[1] for _, r in rounds)
    print(f"\n{len(text)} chars, {analyzer.analyze(text).tokens} tokens, {len(scanner)} rules: analyze p50 {a50:.1f} "
          f"p99 {a99:.1f} us; rules p50 {r50:.1f} p99 {r99:.1f} us; rules/analyze = {ratio:.1%} (5 x 400 runs)")
