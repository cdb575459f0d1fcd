"""Holds a frontier share on live traffic: tier cut-offs from the quantiles of recently seen scores.

The card's thresholds are calibrated on the training mix (benchmark questions); real traffic scores
differently (everyday chat prompts score higher than MMLU questions, though in a sensible order), so a
share calibrated on the card drifts on live traffic. With `FASTROUTE_FRONTIER_SHARE`, this wrapper keeps
the *ranking* of the trained scorer and places the cut-offs so that the last `window` requests split as the
card's calibration intended: the top `frontier_share` to frontier, the next `mid_share` to mid. Until
`warmup` scores are seen it uses the card's thresholds. Per process; pure (no I/O).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fastroute.routing.router import TierScorer


class LiveShareScorer:
    """A `TierScorer` whose tier cut-offs follow the live score distribution."""

    def __init__(
        self,
        scorer: TierScorer,
        frontier_share: float,
        mid_share: float,
        *,
        window: int = 1000,
        warmup: int = 20,
        refresh_every: int = 16,
    ) -> None:
        if not 0.0 <= frontier_share <= 1.0 or not 0.0 <= mid_share <= 1.0 - frontier_share:
            raise ValueError("shares must be in [0, 1] and add up to at most 1")
        self._scorer = scorer
        self.frontier_share = frontier_share
        self.mid_share = mid_share
        self._scores = np.zeros(max(window, warmup), dtype=np.float64)
        self._seen = 0
        self._warmup = warmup
        self._refresh_every = max(1, refresh_every)
        self._cuts: tuple[float, float] | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self._scorer, name)  # model_version, feature_version, card... of the wrapped scorer

    @property
    def cuts(self) -> tuple[float, float] | None:
        """(frontier, mid) cut-offs in force, or None while warming up."""
        return self._cuts

    def score(self, features: npt.NDArray[np.float32], text: str | None = None) -> float:
        value = self._scorer.score(features, text)
        self.observe(value)
        return value

    def observe(self, value: float) -> None:
        self._scores[self._seen % len(self._scores)] = value
        self._seen += 1
        if self._seen >= self._warmup and (self._cuts is None or self._seen % self._refresh_every == 0):
            recent = self._scores[: min(self._seen, len(self._scores))]
            frontier = float(np.quantile(recent, 1.0 - self.frontier_share)) if self.frontier_share else np.inf
            mid_q = 1.0 - self.frontier_share - self.mid_share
            mid = float(np.quantile(recent, mid_q)) if self.mid_share else frontier
            self._cuts = (float(frontier), min(mid, float(frontier)))

    def tier_for(self, score: float) -> str:
        if self._cuts is None:
            return self._scorer.tier_for(score)
        frontier, mid = self._cuts
        if score >= frontier:
            return "frontier"
        if score >= mid:
            return "mid"
        return "budget"
