"""Thresholds calibrated from a validation curve honour the quality target or frontier share on that split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastroute.native import PromptAnalyzer
from fastroute.routing.thresholds import ThresholdError, Thresholds
from fastroute.training.metrics import threshold_curve
from fastroute.training.train import train
from tests.unit.training.synthetic import synthetic_rows

MODELS = Path(__file__).resolve().parents[3] / "models"


def card_for(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> dict:  # type: ignore[type-arg]
    return {"validation": {"curve": threshold_curve(scores, strong, weak).as_dict()}}


def routed_quality(t: Thresholds, scores: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> tuple[float, float]:
    """(quality ratio, frontier share) when frontier prompts get the strong outcome and others the weak one."""
    frontier = np.array([t.tier_for(float(s)) == "frontier" for s in scores])
    return float(np.where(frontier, strong, weak).mean() / strong.mean()), float(frontier.mean())


@pytest.fixture(scope="module")
def validation() -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    rows = synthetic_rows(n=200, seed=5)
    result = train(rows, PromptAnalyzer.from_models_dir(MODELS), seed=0, folds=4, c_grid=[1.0])
    strong = np.array([r.strong for r in rows])
    weak = np.array([r.weak for r in rows])
    return result.card, result.validation_scores, strong, weak


@pytest.mark.parametrize("target", [0.85, 0.9, 0.95, 0.99])
def test_quality_target_is_met_on_the_validation_split(validation, target: float) -> None:  # type: ignore[no-untyped-def]
    card, scores, strong, weak = validation
    t = Thresholds.calibrate(card, quality_target=target)
    ratio, share = routed_quality(t, scores, strong, weak)
    assert ratio >= target - 1e-9
    assert share == pytest.approx(t.frontier_share)
    assert t.mid <= t.frontier


@pytest.mark.parametrize("share_cap", [0.0, 0.1, 0.2, 0.5])
def test_frontier_share_is_not_exceeded_on_the_validation_split(validation, share_cap: float) -> None:  # type: ignore[no-untyped-def]
    card, scores, strong, weak = validation
    t = Thresholds.calibrate(card, frontier_share=share_cap)
    _, share = routed_quality(t, scores, strong, weak)
    assert share <= share_cap + 1e-9
    assert share >= share_cap - 0.05  # and it is not needlessly small


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), target=st.floats(0.5, 1.0))
def test_quality_target_property(seed: int, target: float) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.random(150)
    weak = (rng.random(150) > scores).astype(float)
    strong = (rng.random(150) < 0.9).astype(float)
    if strong.mean() == 0.0:
        return
    t = Thresholds.calibrate(card_for(scores, strong, weak), quality_target=target)
    ratio, _ = routed_quality(t, scores, strong, weak)
    best = max(threshold_curve(scores, strong, weak).quality_ratio)
    assert ratio >= min(target, best) - 1e-9 or t.frontier_share == 1.0


def test_tiers_are_ordered_by_score() -> None:
    t = Thresholds(frontier=0.6, mid=0.4, frontier_share=0.2, mid_share=0.1, quality_ratio=0.95)
    assert [t.tier_for(s) for s in (0.1, 0.4, 0.59, 0.6, 0.99)] == ["budget", "mid", "mid", "frontier", "frontier"]


def test_mid_band_sits_between_budget_and_frontier(validation) -> None:  # type: ignore[no-untyped-def]
    card, scores, _, _ = validation
    t = Thresholds.calibrate(card, frontier_share=0.2)
    tiers = [t.tier_for(float(s)) for s in scores]
    assert tiers.count("mid") > 0
    lowest_mid = min(s for s, tier in zip(scores, tiers, strict=True) if tier == "mid")
    assert all(s < lowest_mid for s, tier in zip(scores, tiers, strict=True) if tier == "budget")


def test_invalid_targets_are_refused() -> None:
    card = card_for(np.array([0.1, 0.9]), np.array([1.0, 1.0]), np.array([0.0, 1.0]))
    with pytest.raises(ThresholdError):
        Thresholds.calibrate(card, quality_target=0.9, frontier_share=0.2)
    with pytest.raises(ThresholdError):
        Thresholds.calibrate(card, quality_target=1.5)
    with pytest.raises(ThresholdError, match="validation curve"):
        Thresholds.calibrate({}, quality_target=0.9)
