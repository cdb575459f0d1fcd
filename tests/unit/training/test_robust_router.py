"""Training options for unseen prompt styles: clip box (ONNX and fast path), dropped features, centring, labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from fastroute import _native
from fastroute.native import PromptAnalyzer
from fastroute.routing.scorer import ComplexityScorer, RouterModelError
from fastroute.training.dataset import LabelledRow
from fastroute.training.export import linear_model_onnx
from fastroute.training.train import dropped_mask, fit_linear, labels, train, write_model
from tests.unit.training.synthetic import synthetic_rows

MODELS = Path(__file__).resolve().parents[3] / "models"
DIM = int(_native.FEATURE_DIM)


def _write(models_dir: Path, onnx_bytes: bytes, card: dict[str, object]) -> None:
    (models_dir / "router").mkdir(parents=True, exist_ok=True)
    (models_dir / "router" / "model.onnx").write_bytes(onnx_bytes)
    (models_dir / "router" / "card.json").write_bytes(orjson.dumps(card))


def _card(low: np.ndarray | None, high: np.ndarray | None) -> dict[str, object]:
    model: dict[str, object] = {"kind": "logistic_regression"}
    if low is not None and high is not None:
        model["clip"] = {"low": low.tolist(), "high": high.tolist()}
    curve = {"threshold": [2.0, 0.5, 0.0], "strong_share": [0.0, 0.5, 1.0], "quality_ratio": [0.8, 0.95, 1.0]}
    return {
        "model_version": "test",
        "feature_version": _native.FEATURE_VERSION,
        "feature_dim": DIM,
        "model": model,
        "validation": {"curve": curve},
    }


def test_fast_path_clips_like_the_onnx_graph(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    weights, bias = rng.normal(size=DIM), 0.3
    low = rng.uniform(-1.0, 0.0, DIM).astype(np.float32)
    high = (low + rng.uniform(0.0, 2.0, DIM)).astype(np.float32)
    high[3] = low[3]  # a slot pinned to one value must not move the score
    _write(tmp_path, linear_model_onnx(weights, bias, low=low, high=high), _card(low, high))
    scorer = ComplexityScorer.load(tmp_path)
    assert scorer.uses_fast_path
    probes = (rng.normal(scale=5.0, size=(64, DIM))).astype(np.float32)  # mostly outside the box
    fast = np.array([scorer.score(p) for p in probes])
    clipped = np.clip(probes.astype(np.float64), low, high)
    expected = 1.0 / (1.0 + np.exp(-(clipped @ weights + bias)))
    np.testing.assert_allclose(scorer.score_onnx(probes), expected, atol=1e-5)
    np.testing.assert_allclose(fast, expected, atol=1e-5)
    moved = probes[0].copy()
    moved[3] += 100.0
    assert scorer.score(moved) == pytest.approx(scorer.score(probes[0]), abs=1e-9)


def test_card_box_that_disagrees_with_the_graph_leaves_the_fast_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    low, high = np.zeros(DIM, dtype=np.float32), np.ones(DIM, dtype=np.float32)
    _write(tmp_path, linear_model_onnx(rng.normal(size=DIM), 0.0, low=low, high=high), _card(low, high * 2))
    scorer = ComplexityScorer.load(tmp_path)
    assert not scorer.uses_fast_path  # the probes caught the mismatch; onnxruntime scores instead
    x = rng.normal(size=DIM).astype(np.float32)
    assert scorer.score(x) == pytest.approx(float(scorer.score_onnx(x.reshape(1, -1))[0]), abs=1e-6)


def test_unreadable_clip_box_is_refused(tmp_path: Path) -> None:
    low = np.zeros(DIM, dtype=np.float32)
    _write(tmp_path, linear_model_onnx(np.ones(DIM), 0.0), _card(low, low - 1.0))
    with pytest.raises(RouterModelError, match="clip bounds"):
        ComplexityScorer.load(tmp_path)


def test_export_refuses_half_a_box() -> None:
    with pytest.raises(ValueError, match="both"):
        linear_model_onnx(np.ones(DIM), 0.0, low=np.zeros(DIM))


def test_label_is_the_weak_model_falling_short_of_its_files_best() -> None:
    strong = np.array([1.0, 1.0, 0.0, 10.0, 9.0, 10.0])
    weak = np.array([1.0, 0.0, 0.0, 10.0, 9.5, 4.0])
    sources = np.array(["a", "a", "a", "b", "b", "b"])
    assert labels(strong, weak, sources).tolist() == [0, 1, 1, 0, 1, 1]


def test_dropped_features_get_zero_weight_and_unknown_names_fail() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, DIM))
    y = (x[:, 0] + x[:, 5] + rng.normal(size=300) > 0).astype(np.int64)
    mask = dropped_mask([_native.FEATURE_NAMES[5]])
    router, _ = fit_linear(x, y, 1.0, dropped=mask)
    assert router.weights[5] == 0.0 and router.weights[0] > 0.0
    with pytest.raises(ValueError, match="unknown feature"):
        dropped_mask(["no_such_feature"])


def test_centring_per_source_ignores_a_shift_between_sources() -> None:
    """A feature that only tells the sources apart (and their base rates) must not earn weight."""
    rng = np.random.default_rng(0)
    n = 400
    sources = np.array(["a"] * n + ["b"] * n)
    x = rng.normal(size=(2 * n, DIM))
    x[n:, 1] += 3.0  # source b sits elsewhere on slot 1 ...
    y = np.r_[rng.random(n) < 0.1, rng.random(n) < 0.6].astype(np.int64)  # ... and has more positives
    pooled, _ = fit_linear(x, y, 1.0)
    centred, _ = fit_linear(x, y, 1.0, sources=sources)
    assert abs(pooled.weights[1]) > 0.2
    assert abs(centred.weights[1]) < 0.1


def test_training_outside_the_box_scores_like_the_edge() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, DIM))
    y = (x[:, 0] > 0).astype(np.int64)
    router, _ = fit_linear(x, y, 1.0, clip_percentile=0.5)
    edge = np.zeros(DIM)
    edge[0] = router.high[0]
    far = edge.copy()
    far[0] = 1e6
    assert router.scores(far[None, :])[0] == pytest.approx(router.scores(edge[None, :])[0])


def test_card_records_guards_and_cross_source_transfer(tmp_path: Path) -> None:
    analyzer = PromptAnalyzer.from_models_dir(MODELS)
    rows = synthetic_rows(160)
    two_sources = [
        LabelledRow(r.text, r.strong, r.weak, r.split, r.group, "left" if i % 2 else "right")
        for i, r in enumerate(rows)
    ]
    result = train(
        two_sources,
        analyzer,
        seed=1,
        folds=4,
        c_grid=[1.0],
        dropped_features=["has_dollar"],
        clip_percentile=0.5,
        centre_per_source=True,
        blend_grid=(),
    )
    model = result.card["model"]
    assert model["dropped_features"] == ["has_dollar"]
    assert model["centred_per_source"] is True
    assert len(model["clip"]["low"]) == DIM
    assert set(result.card["validation"]["cross_source_apgr"]) == {"left->right", "right->left"}
    assert set(result.card["validation"]["apgr"]) == {"left", "right"}
    write_model(result, tmp_path / "router")
    scorer = ComplexityScorer.load(tmp_path)
    assert scorer.uses_fast_path
    np.testing.assert_allclose(
        [scorer.score(f) for f in result.features], scorer.score_onnx(result.features), atol=1e-5
    )


def test_defaults_leave_the_box_open(tmp_path: Path) -> None:
    analyzer = PromptAnalyzer.from_models_dir(MODELS)
    result = train(synthetic_rows(), analyzer, seed=0, folds=4, c_grid=[1.0], blend_grid=())
    assert result.card["model"]["clip"] is None and result.card["model"]["centred_per_source"] is False
    assert result.card["model"]["dropped_features"] == ["has_dollar", "has_percent", "has_code_fence"]
    write_model(result, tmp_path / "router")
    scorer = ComplexityScorer.load(tmp_path)
    assert scorer.uses_fast_path
    far = np.full(DIM, 50.0, dtype=np.float32)  # far outside anything seen: scored by the plain linear map
    assert scorer.score(far) == pytest.approx(float(scorer.score_onnx(far.reshape(1, -1))[0]), abs=1e-6)


def test_shipped_model_sends_a_greeting_below_a_long_technical_request() -> None:
    if not (MODELS / "router" / "model.onnx").is_file():
        pytest.skip("no shipped router model")
    scorer = ComplexityScorer.load(MODELS)
    long_prompt = "Explain in depth, step by step, with proofs: " + "why does the algorithm converge? " * 400
    greeting = scorer.score(_native.extract_features("<user> Hi"), "<user> Hi")
    request = scorer.score(_native.extract_features(f"<user> {long_prompt}"), f"<user> {long_prompt}")
    assert greeting < request
