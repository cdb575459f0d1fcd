"""Routing-decision latency (features [+ n-grams] + score + tier) at 100, 500, 2,000 and 16,000 tokens.

Run: `pytest benchmarks/micro/test_route_bench.py --benchmark-enable -s`. Besides pytest-benchmark's table,
each case times 5,000 single calls with `perf_counter_ns` and prints p50/p99 (pytest-benchmark has no p99),
also stored in `extra_info`. Goal (issue 9): p99 <= 50 µs at 500 tokens for the decision itself; the
`analyze` variant adds what the gateway's one-pass analysis costs (exact tokens, key, embedding). A model that
reads n-grams (`scorer.uses_text`) hashes the text inside `score`, so it is part of every case here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest

from fastroute import _native
from fastroute.native import PromptAnalyzer, count_tokens
from fastroute.prompt import conversation_text
from fastroute.routing.scorer import ComplexityScorer
from fastroute.training.export import linear_model_onnx

MODELS = Path(__file__).resolve().parents[2] / "models"
PARAGRAPH = (
    "A train leaves the station at 3:15 pm travelling at 80 km/h; a second train leaves 40 minutes later at "
    "110 km/h on the same track. Explain step by step when and where the second train catches up, then write "
    "a short Python function `catch_up(v1, v2, delay)` that returns both values, and compare the approach with "
    "solving the equation graphically. Which of the following assumptions matter most, and why? "
)
SIZES = (100, 500, 2_000, 16_000)


def prompt_of(tokens: int) -> str:
    """A conversation text of about `tokens` cl100k tokens (within one paragraph's worth below)."""
    per = count_tokens(PARAGRAPH)
    body = PARAGRAPH * (tokens // per + 1)
    words = body.split(" ")
    lo, hi = 1, len(words)
    while lo < hi:  # longest word prefix within the budget
        mid = (lo + hi + 1) // 2
        if count_tokens(" ".join(words[:mid])) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    return conversation_text([{"role": "user", "content": " ".join(words[:lo])}])


def percentiles(fn: Callable[[], object], calls: int = 5_000) -> tuple[float, float]:
    for _ in range(200):
        fn()
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter_ns()
        fn()
        times[i] = time.perf_counter_ns() - start
    return float(np.percentile(times, 50) / 1e3), float(np.percentile(times, 99) / 1e3)


@pytest.fixture(scope="module")
def scorer() -> ComplexityScorer:
    if not (MODELS / "router" / "model.onnx").is_file():
        pytest.skip("no shipped router model")
    return ComplexityScorer.load(MODELS, quality_target=0.95)


@pytest.mark.parametrize("tokens", SIZES)
def test_route_decision(benchmark, scorer: ComplexityScorer, tokens: int) -> None:  # type: ignore[no-untyped-def]
    text = prompt_of(tokens)

    def decide() -> str:
        return scorer.tier_for(scorer.score(_native.extract_features(text), text))

    p50, p99 = percentiles(decide)
    benchmark.extra_info.update({"tokens": tokens, "p50_us": p50, "p99_us": p99})
    print(f"\nroute decision {tokens:>6} tokens: p50 {p50:.1f} µs  p99 {p99:.1f} µs")
    assert decide() in ("budget", "mid", "frontier")
    benchmark(decide)


@pytest.fixture(scope="module")
def blend_scorer(tmp_path_factory: pytest.TempPathFactory) -> ComplexityScorer:
    """A structural + n-gram blend of the shipped shape (random weights: the cost does not depend on them)."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=_native.FEATURE_DIM) * 0.1
    ngram_weights = rng.normal(size=_native.NGRAM_BUCKETS) * 0.1
    models = tmp_path_factory.mktemp("models")
    (models / "router").mkdir()
    (models / "router" / "model.onnx").write_bytes(linear_model_onnx(weights, -0.5, ngram_weights=ngram_weights))
    curve = {
        "threshold": [2.0, 0.6, 0.4, 0.0],
        "strong_share": [0.0, 0.2, 0.5, 1.0],
        "quality_ratio": [0.8, 0.9, 0.96, 1.0],
    }
    ngrams = {"version": _native.NGRAM_VERSION, "buckets": _native.NGRAM_BUCKETS, "mean_logit": 0.0}
    card = {
        "model_version": "bench-blend",
        "feature_version": _native.FEATURE_VERSION,
        "feature_dim": _native.FEATURE_DIM,
        "model": {"kind": "logistic_regression+ngrams", "ngrams": ngrams},
        "validation": {"curve": curve},
    }
    (models / "router" / "card.json").write_bytes(orjson.dumps(card))
    scorer = ComplexityScorer.load(models, quality_target=0.95)
    assert scorer.uses_text and scorer.uses_fast_path
    return scorer


@pytest.mark.parametrize("tokens", SIZES)
def test_route_decision_blend(benchmark, blend_scorer: ComplexityScorer, tokens: int) -> None:  # type: ignore[no-untyped-def]
    """The same decision with a structural + n-gram blend (`fastroute train --blend-grid ...`), shipped or not."""
    text = prompt_of(tokens)

    def decide() -> str:
        return blend_scorer.tier_for(blend_scorer.score(_native.extract_features(text), text))

    p50, p99 = percentiles(decide)
    benchmark.extra_info.update({"tokens": tokens, "p50_us": p50, "p99_us": p99})
    print(f"\nblend route decision {tokens:>6} tokens: p50 {p50:.1f} µs  p99 {p99:.1f} µs")
    benchmark(decide)


@pytest.mark.parametrize("tokens", SIZES)
def test_route_decision_with_analyze(benchmark, scorer: ComplexityScorer, tokens: int) -> None:  # type: ignore[no-untyped-def]
    analyzer = PromptAnalyzer.from_models_dir(MODELS)
    text = prompt_of(tokens)

    def decide() -> str:
        return scorer.tier_for(scorer.score(analyzer.analyze(text).features, text))

    p50, p99 = percentiles(decide, calls=1_000)
    benchmark.extra_info.update({"tokens": tokens, "p50_us": p50, "p99_us": p99})
    print(f"\nanalyze + route {tokens:>6} tokens: p50 {p50:.1f} µs  p99 {p99:.1f} µs")
    benchmark(decide)


def test_score_onnxruntime_vs_fast_path(benchmark, scorer: ComplexityScorer) -> None:  # type: ignore[no-untyped-def]
    text = prompt_of(500)
    features = _native.extract_features(text)
    batch = features.reshape(1, -1)
    texts = [text] if scorer.uses_text else None
    ort_p50, ort_p99 = percentiles(lambda: scorer.score_onnx(batch, texts))
    fast_p50, fast_p99 = percentiles(lambda: scorer.score(features, text))
    benchmark.extra_info.update({"ort_p50_us": ort_p50, "ort_p99_us": ort_p99, "fast_p50_us": fast_p50})
    print(
        f"\nscore: onnxruntime p50 {ort_p50:.1f} p99 {ort_p99:.1f} µs; numpy p50 {fast_p50:.1f} p99 {fast_p99:.1f} µs"
    )
    benchmark(lambda: scorer.score(features, text))


@pytest.mark.parametrize("tokens", SIZES)
def test_ngram_part(benchmark, tokens: int) -> None:  # type: ignore[no-untyped-def]
    """The n-gram half alone (hash the window's words, sum their weights), whatever model is shipped."""
    table = _native.NgramTable(np.random.default_rng(0).normal(size=_native.NGRAM_BUCKETS).astype(np.float32))
    text = prompt_of(tokens)
    p50, p99 = percentiles(lambda: table.dot(text))
    benchmark.extra_info.update({"tokens": tokens, "p50_us": p50, "p99_us": p99})
    print(f"\nn-gram dot {tokens:>6} tokens: p50 {p50:.1f} µs  p99 {p99:.1f} µs")
    benchmark(lambda: table.dot(text))
