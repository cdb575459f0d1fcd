"""LiveShareScorer: cut-offs follow the live score distribution so the frontier share holds on real traffic."""

from __future__ import annotations

import numpy as np
import pytest

from fastroute.routing.live_share import LiveShareScorer


class Identity:
    """Scores are the first feature; the 'card' thresholds are fixed and badly placed for the traffic."""

    def score(self, features: np.ndarray, text: str | None = None) -> float:
        return float(features[0])

    def tier_for(self, score: float) -> str:
        return "frontier" if score >= 0.2 else "mid" if score >= 0.1 else "budget"


def _tiers(scorer: LiveShareScorer, values: np.ndarray) -> list[str]:
    return [scorer.tier_for(scorer.score(np.array([v], dtype=np.float32))) for v in values]


def test_warmup_uses_the_card_thresholds() -> None:
    s = LiveShareScorer(Identity(), 0.2, 0.3, window=100, warmup=50)
    assert _tiers(s, np.full(10, 0.3)) == ["frontier"] * 10  # card says >= 0.2 is frontier
    assert s.cuts is None


@pytest.mark.parametrize("shift", [0.0, 0.25, 0.6])
def test_shares_hold_whatever_the_traffic_scores(shift: float) -> None:
    rng = np.random.default_rng(7)
    s = LiveShareScorer(Identity(), 0.2, 0.3, window=1000, warmup=50)
    _tiers(s, rng.uniform(0, 0.4, 1000) + shift)  # fill the window
    tiers = _tiers(s, rng.uniform(0, 0.4, 4000) + shift)
    share = {t: tiers.count(t) / len(tiers) for t in ("budget", "mid", "frontier")}
    assert share["frontier"] == pytest.approx(0.2, abs=0.03)
    assert share["mid"] == pytest.approx(0.3, abs=0.03)
    assert share["budget"] == pytest.approx(0.5, abs=0.03)


def test_ranking_is_kept() -> None:
    rng = np.random.default_rng(1)
    s = LiveShareScorer(Identity(), 0.2, 0.3, window=500, warmup=50)
    _tiers(s, rng.uniform(0.5, 0.9, 500))
    low, high = s.tier_for(0.5), s.tier_for(0.9)
    assert (low, high) == ("budget", "frontier")


def test_invalid_shares_are_refused() -> None:
    with pytest.raises(ValueError):
        LiveShareScorer(Identity(), 0.8, 0.5)
