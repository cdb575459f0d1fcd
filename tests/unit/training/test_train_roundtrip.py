"""train -> export -> load -> score gives the training library's scores; version checks; determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from fastroute import _native
from fastroute.native import PromptAnalyzer
from fastroute.routing.scorer import ComplexityScorer, RouterModelError
from fastroute.training.train import train, write_model
from tests.unit.training.synthetic import synthetic_rows

MODELS = Path(__file__).resolve().parents[3] / "models"


@pytest.fixture(scope="module")
def analyzer() -> PromptAnalyzer:
    return PromptAnalyzer.from_models_dir(MODELS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, analyzer: PromptAnalyzer):  # type: ignore[no-untyped-def]
    result = train(synthetic_rows(), analyzer, seed=3, folds=4, c_grid=[0.1, 1.0], blend_grid=())
    models_dir = tmp_path_factory.mktemp("models")
    write_model(result, models_dir / "router")
    return result, models_dir


def test_loaded_scores_equal_sklearn(trained) -> None:  # type: ignore[no-untyped-def]
    result, models_dir = trained
    scorer = ComplexityScorer.load(models_dir)
    x = result.features
    low, high = result.router.low, result.router.high
    clipped = np.clip(x.astype(np.float64), low, high)
    mean, std = clipped.mean(axis=0), clipped.std(axis=0)
    std[std == 0.0] = 1.0
    # One source: centring per source is centring once, so sklearn's own probabilities are the reference.
    expected = result.classifier.predict_proba((clipped - mean) / std)[:, 1]
    onnx_scores = scorer.score_onnx(x)
    fast = np.array([scorer.score(row) for row in x])
    assert scorer.uses_fast_path
    np.testing.assert_allclose(onnx_scores, expected, atol=1e-5)
    np.testing.assert_allclose(fast, expected, atol=1e-5)
    assert len(set(np.round(expected, 6))) > 10  # a real spread of scores, not a constant


def test_serving_features_are_the_training_features(trained, analyzer: PromptAnalyzer) -> None:  # type: ignore[no-untyped-def]
    result, _ = trained
    row = synthetic_rows()[5]
    np.testing.assert_array_equal(analyzer.analyze(row.text).features, result.features[5])
    np.testing.assert_array_equal(_native.extract_features(row.text), result.features[5])


def test_same_seed_same_model(analyzer: PromptAnalyzer, trained) -> None:  # type: ignore[no-untyped-def]
    result, _ = trained
    again = train(synthetic_rows(), analyzer, seed=3, folds=4, c_grid=[0.1, 1.0], blend_grid=())
    assert again.onnx_bytes == result.onnx_bytes
    assert again.card["model_version"] == result.card["model_version"]


def test_refuses_another_feature_version(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, _ = trained
    card = dict(result.card, feature_version=_native.FEATURE_VERSION + 1)
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "model.onnx").write_bytes(result.onnx_bytes)
    (tmp_path / "router" / "card.json").write_bytes(orjson.dumps(card))
    with pytest.raises(RouterModelError, match="feature version"):
        ComplexityScorer.load(tmp_path)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RouterModelError, match="cannot read"):
        ComplexityScorer.load(tmp_path)


def test_card_records_what_was_trained(trained) -> None:  # type: ignore[no-untyped-def]
    result, _ = trained
    card = result.card
    assert card["feature_version"] == _native.FEATURE_VERSION and card["seed"] == 3
    assert card["training_data"]["rows"] == 120
    assert {g["C"] for g in card["cv_grid"]} == {0.1, 1.0}
    assert card["model"]["C"] in (0.1, 1.0)
    assert card["validation"]["apgr"]["synthetic"] > 0.55  # the synthetic gain is learnable


def test_shipped_model_loads_and_scores() -> None:
    if not (MODELS / "router" / "model.onnx").is_file():
        pytest.skip("no shipped router model")
    scorer = ComplexityScorer.load(MODELS, frontier_share=0.2)
    short = scorer.score(_native.extract_features("<user> hi"), "<user> hi")
    assert 0.0 <= short <= 1.0
    assert scorer.tier_for(short) in ("budget", "mid", "frontier")
