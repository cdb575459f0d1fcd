"""Routing metrics against an independent brute-force computation on tiny hand-made sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastroute.training.metrics import (
    aiq,
    apgr,
    cost_saving,
    cpt,
    random_metrics,
    router_metrics,
    routing_curve,
    share_at_quality,
    threshold_curve,
)

# Hand-made: 5 prompts, distinct scores. Gains (strong - weak): +1, 0, +1, -1, 0.
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
STRONG = np.array([1.0, 1.0, 1.0, 0.0, 1.0])
WEAK = np.array([0.0, 1.0, 0.0, 1.0, 1.0])


def brute_quality(k: int, scores: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> float:
    """Mean quality with the k top-scored prompts strong, by explicit loops (distinct scores only)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    top = set(order[:k])
    return sum(strong[i] if i in top else weak[i] for i in range(len(scores))) / len(scores)


def test_curve_and_apgr_match_hand_computation() -> None:
    curve = routing_curve(SCORES, STRONG, WEAK)
    # By hand: Q = [3, 4, 4, 5, 4, 4] / 5 for k = 0..5; Q_weak = 0.6, Q_strong = 0.8.
    assert curve.quality == pytest.approx([0.6, 0.8, 0.8, 1.0, 0.8, 0.8])
    for k in range(6):
        assert curve.quality[k] == pytest.approx(brute_quality(k, SCORES, STRONG, WEAK))
    pgr = [0.0, 1.0, 1.0, 2.0, 1.0, 1.0]
    by_hand = sum((pgr[k] + pgr[k + 1]) / 2 * 0.2 for k in range(5))
    assert apgr(curve) == pytest.approx(by_hand) == pytest.approx(1.1)
    assert cpt(curve, 0.5) == pytest.approx(0.2)
    assert share_at_quality(curve, 0.95) == pytest.approx(0.2)
    assert cost_saving(0.2, 0.1) == pytest.approx(1 - (0.2 + 0.8 * 0.1))


def test_aiq_is_the_area_under_the_monotone_upper_hull() -> None:
    curve = routing_curve(SCORES, STRONG, WEAK)
    # Hull points (0, .6), (.2, .8), (.6, 1.0), then flat at 1.0 to c = 1 after the monotone fix.
    by_hand = 0.2 * (0.6 + 0.8) / 2 + 0.4 * (0.8 + 1.0) / 2 + 0.4 * 1.0
    assert aiq(curve) == pytest.approx(by_hand)


def test_ties_count_as_the_average_over_orders() -> None:
    scores = np.array([0.5, 0.5, 0.5, 0.2])
    strong = np.array([1.0, 0.0, 1.0, 1.0])
    weak = np.array([0.0, 0.0, 1.0, 0.0])
    tied = routing_curve(scores, strong, weak)
    orders = list(itertools.permutations(range(3)))
    for k in range(5):
        expected = np.mean(
            [
                brute_quality(k, np.array([3.0 - o.index(0), 3.0 - o.index(1), 3.0 - o.index(2), 0.0]), strong, weak)
                for o in orders
            ]
        )
        assert tied.quality[k] == pytest.approx(expected)


def test_random_is_near_half_and_oracle_beats_it() -> None:
    rng = np.random.default_rng(1)
    strong = (rng.random(400) < 0.8).astype(float)
    weak = (rng.random(400) < 0.6).astype(float)
    rand = random_metrics(strong, weak, seeds=20)
    oracle = router_metrics(strong - weak, strong, weak)
    assert abs(rand.apgr - 0.5) < 0.05
    assert oracle.apgr > 1.0 and oracle.cpt80 < rand.cpt80


def test_threshold_curve_is_exact_for_each_threshold() -> None:
    curve = threshold_curve(SCORES, STRONG, WEAK, points=5)
    assert curve.strong_share[0] == 0.0 and curve.quality_ratio[0] == pytest.approx(0.6 / 0.8)
    for t, share, ratio in zip(curve.threshold, curve.strong_share, curve.quality_ratio, strict=True):
        mask = SCORES >= t
        assert share == pytest.approx(mask.mean())
        assert ratio == pytest.approx(np.where(mask, STRONG, WEAK).mean() / STRONG.mean())
