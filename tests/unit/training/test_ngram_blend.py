"""Structural + n-gram blend: train -> export -> load -> score equals the training library; selection; checks."""

from __future__ import annotations

import io
import math
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import orjson
import pytest

from fastroute import _native
from fastroute.native import PromptAnalyzer
from fastroute.routing.scorer import ComplexityScorer, RouterModelError
from fastroute.training import evaluate
from fastroute.training.dataset import LabelledRow
from fastroute.training.ngram_blend import ngram_matrix
from fastroute.training.train import BLEND_KIND, TrainResult, main, train, write_model
from tests.unit.training.synthetic import synthetic_rows

MODELS = Path(__file__).resolve().parents[3] / "models"
TOPIC_GAIN = {"integral": 0.6, "proof": 0.5, "poem": -0.3, "greeting": -0.3}


def topical_rows(n: int = 160, seed: int = 0) -> list[LabelledRow]:
    """Rows whose gain depends on topic words (which only n-grams see) as well as on length."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, base in enumerate(synthetic_rows(n, seed)):
        topic = str(rng.choice(list(TOPIC_GAIN)))
        p_gain = min(0.95, max(0.05, 0.3 + TOPIC_GAIN[topic] + 0.005 * len(base.text.split())))
        weak = float(rng.random() > p_gain)
        strong = 1.0 if weak == 0.0 else float(rng.random() < 0.9)
        source = "left" if i % 2 else "right"
        rows.append(LabelledRow(f"{base.text} about the {topic}", strong, weak, "train", base.group, source))
    return rows


@pytest.fixture(scope="module")
def analyzer() -> PromptAnalyzer:
    return PromptAnalyzer.from_models_dir(MODELS)


@pytest.fixture(scope="module")
def blended(tmp_path_factory: pytest.TempPathFactory, analyzer: PromptAnalyzer) -> tuple[TrainResult, Path]:
    result = train(topical_rows(), analyzer, seed=2, folds=4, c_grid=[1.0], ngram_c_grid=[1.0], blend_grid=[0.5])
    models_dir = tmp_path_factory.mktemp("models")
    write_model(result, models_dir / "router")
    return result, models_dir


def _sklearn_scores(result: TrainResult) -> np.ndarray:
    """Scores from the two sklearn classifiers themselves, blended as the card says."""
    assert result.blend is not None and result.ngram_rows is not None
    x = result.features.astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0.0] = 1.0
    hand = result.classifier.decision_function((x - mean) / std)
    ngram = result.blend.ngrams.classifier.decision_function(result.ngram_rows)
    b = result.blend
    raw = (1.0 - b.weight) * hand / b.hand_sd + b.weight * ngram / b.ngram_sd
    return 1.0 / (1.0 + np.exp(-(b.calibration.slope * raw + b.calibration.offset)))


def test_loaded_blend_scores_equal_sklearn(blended: tuple[TrainResult, Path]) -> None:
    result, models_dir = blended
    rows = topical_rows()
    texts = [r.text for r in rows]
    scorer = ComplexityScorer.load(models_dir)
    assert scorer.uses_text and scorer.uses_fast_path
    assert result.card["model"]["kind"] == BLEND_KIND
    expected = _sklearn_scores(result)
    onnx_scores = scorer.score_onnx(result.features, texts)
    fast = np.array([scorer.score(f, t) for f, t in zip(result.features, texts, strict=True)])
    np.testing.assert_allclose(onnx_scores, expected, atol=1e-5)
    np.testing.assert_allclose(fast, expected, atol=1e-5)
    assert len(set(np.round(expected, 6))) > 10


def test_training_ngrams_are_the_serving_ngrams(blended: tuple[TrainResult, Path]) -> None:
    result, _ = blended
    text = topical_rows()[7].text
    assert result.ngram_rows is not None
    np.testing.assert_array_equal(result.ngram_rows[7].toarray().ravel().astype(np.float32), _native.ngram_vector(text))
    np.testing.assert_array_equal(ngram_matrix([text]).toarray().ravel().astype(np.float32), _native.ngram_vector(text))


def test_topic_words_move_the_score(blended: tuple[TrainResult, Path]) -> None:
    _, models_dir = blended
    scorer = ComplexityScorer.load(models_dir)
    text_hard, text_easy = "<user> river song about the integral", "<user> river song about the poem"
    features = _native.extract_features(text_hard)
    assert scorer.score(features, text_hard) > scorer.score(features, text_easy)


def test_without_text_the_ngram_half_is_its_training_mean(blended: tuple[TrainResult, Path]) -> None:
    result, models_dir = blended
    scorer = ComplexityScorer.load(models_dir)
    features = result.features[0]
    assert result.blend is not None
    folded = result.blend.folded
    logit = float(features.astype(np.float64) @ folded.hand_weights) + folded.bias
    expected = 1.0 / (1.0 + math.exp(-(logit + result.card["model"]["ngrams"]["mean_logit"])))
    assert scorer.score(features) == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="one text per feature row"):
        scorer.score_onnx(result.features)


def test_same_seed_same_blend(blended: tuple[TrainResult, Path], analyzer: PromptAnalyzer) -> None:
    result, _ = blended
    again = train(topical_rows(), analyzer, seed=2, folds=4, c_grid=[1.0], ngram_c_grid=[1.0], blend_grid=[0.5])
    assert again.onnx_bytes == result.onnx_bytes and again.card["model_version"] == result.card["model_version"]
    assert result.card["model_version"].startswith(f"router-fv{_native.FEATURE_VERSION}-ng{_native.NGRAM_VERSION}-")


def test_refuses_another_ngram_version(blended: tuple[TrainResult, Path], tmp_path: Path) -> None:
    result, _ = blended
    card = orjson.loads(orjson.dumps(result.card))
    card["model"]["ngrams"]["version"] = _native.NGRAM_VERSION + 1
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "model.onnx").write_bytes(result.onnx_bytes)
    (tmp_path / "router" / "card.json").write_bytes(orjson.dumps(card))
    with pytest.raises(RouterModelError, match="n-gram version"):
        ComplexityScorer.load(tmp_path)


def test_search_records_every_setting_and_can_keep_the_structural_model(analyzer: PromptAnalyzer) -> None:
    rows = topical_rows(120, seed=1)
    result = train(rows, analyzer, seed=0, folds=4, c_grid=[1.0], ngram_c_grid=[0.1, 1.0], blend_grid=[0.0, 0.5])
    grid = result.card["blend_grid"]
    assert [(g["ngram_C"], g["weight"]) for g in grid] == [(0.1, 0.0), (0.1, 0.5), (1.0, 0.0), (1.0, 0.5)]
    assert all(set(g["cross_source_apgr"]) == {"left->right", "right->left"} for g in grid)
    best = max(grid, key=lambda g: g["criterion"])
    assert (result.card["model"]["kind"] == BLEND_KIND) == (best["weight"] > 0.0)
    structural = train(rows, analyzer, seed=0, folds=4, c_grid=[1.0], blend_grid=[0.0])
    assert structural.card["model"]["kind"] == "logistic_regression" and structural.blend is None
    assert structural.card["model"]["ngrams"] is None


def test_cli_searches_the_blend_only_when_asked(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    rows = topical_rows(120, seed=3)
    data.write_bytes(
        b"\n".join(
            orjson.dumps({"prompt": r.text.removeprefix("<user> "), "strong": r.strong, "weak": r.weak}) for r in rows
        )
    )
    env = {"FASTROUTE_MODELS_DIR": str(MODELS)}
    assert main([str(data), "--out", str(tmp_path / "plain"), "--folds", "3"], env) == 0
    plain = orjson.loads((tmp_path / "plain" / "card.json").read_bytes())
    assert plain["model"]["kind"] == "logistic_regression" and plain["blend_grid"] is None
    out = tmp_path / "blend" / "router"
    assert main([str(data), "--out", str(out), "--folds", "3", "--blend-grid", "0.5", "--ngram-c-grid", "1"], env) == 0
    blend = orjson.loads((out / "card.json").read_bytes())
    assert blend["model"]["kind"] == BLEND_KIND and blend["model"]["ngrams"]["blend_weight"] == 0.5
    assert ComplexityScorer.load(tmp_path / "blend").uses_text


def test_eval_scores_a_blend_with_its_texts(blended: tuple[TrainResult, Path], tmp_path: Path) -> None:
    _, models_dir = blended
    rows = topical_rows(30, seed=9)
    data, scores_out = tmp_path / "held.jsonl", tmp_path / "scores.jsonl"
    data.write_bytes(
        b"\n".join(
            orjson.dumps({"prompt": r.text.removeprefix("<user> "), "strong": r.strong, "weak": r.weak}) for r in rows
        )
    )
    with redirect_stdout(io.StringIO()):
        assert evaluate.main([str(data), "--models-dir", str(models_dir), "--scores-out", str(scores_out)], {}) == 0
    got = [orjson.loads(line)["score"] for line in scores_out.read_bytes().splitlines()]
    scorer = ComplexityScorer.load(models_dir)
    expected = [scorer.score(_native.extract_features(r.text), r.text) for r in rows]
    np.testing.assert_allclose(got, expected, atol=1e-5)
