"""`Thresholds`: two score cut-offs mapping a router score to budget / mid / frontier, calibrated from a card.

Pure: reads only the card dict it is given. The card's validation curve (out-of-fold scores on the training
rows) says, for each score threshold t, which share of prompts score >= t and what quality ratio
Q(t) / Q_strong results when exactly those go to the strong model and the rest to the weak one.

Frontier cut: with a quality target q, the highest threshold whose ratio reaches q (fewest frontier calls);
with a frontier share s, the lowest threshold whose share stays <= s ("at most s of calls").

Mid band: the data only compare a strong and a weak model, so the mid tier is placed as a safety band just
below the frontier cut: it takes the next prompts, down to the threshold at which frontier routing would have
recovered `MID_GAP_FRACTION` (half) of the quality still missing at the frontier cut. Those are the prompts
most likely to need more than the budget model without clearly needing the frontier one; if the frontier cut
already reaches full quality the band is empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_QUALITY_TARGET = 0.95
MID_GAP_FRACTION = 0.5
TIERS = ("budget", "mid", "frontier")


class ThresholdError(ValueError):
    """The calibration target is invalid or the card carries no usable validation curve."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """score >= frontier -> "frontier"; score >= mid -> "mid"; else "budget"."""

    frontier: float
    mid: float
    frontier_share: float
    mid_share: float
    quality_ratio: float

    def tier_for(self, score: float) -> str:
        if score >= self.frontier:
            return "frontier"
        if score >= self.mid:
            return "mid"
        return "budget"

    @classmethod
    def calibrate(
        cls,
        card: Mapping[str, Any],
        quality_target: float | None = None,
        frontier_share: float | None = None,
    ) -> Thresholds:
        """Cut-offs meeting one target on the card's validation curve (default: quality 0.95).

        Raises:
            ThresholdError: both targets given, a target outside [0, 1], or no curve in the card.
        """
        if quality_target is not None and frontier_share is not None:
            raise ThresholdError("give a quality target or a frontier share, not both")
        for name, value in (("quality_target", quality_target), ("frontier_share", frontier_share)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ThresholdError(f"{name} must be within [0, 1], got {value}")
        try:
            curve = card["validation"]["curve"]
            thresholds = [float(t) for t in curve["threshold"]]
            shares = [float(s) for s in curve["strong_share"]]
            ratios = [float(r) for r in curve["quality_ratio"]]
        except (KeyError, TypeError, ValueError) as e:
            raise ThresholdError(f"model card has no usable validation curve: {e}") from e
        if not thresholds or not len(thresholds) == len(shares) == len(ratios):
            raise ThresholdError("model card validation curve is empty or ragged")
        last = len(thresholds) - 1
        if frontier_share is not None:
            within = [i for i, s in enumerate(shares) if s <= frontier_share + 1e-12]
            cut = within[-1] if within else 0
        else:
            target = DEFAULT_QUALITY_TARGET if quality_target is None else quality_target
            cut = next((i for i, r in enumerate(ratios) if r >= target - 1e-12), last)
        reached = ratios[cut]
        mid_goal = reached + (1.0 - reached) * MID_GAP_FRACTION
        mid_cut = next((i for i in range(cut, last + 1) if ratios[i] >= mid_goal - 1e-12), last)
        if reached >= 1.0:
            mid_cut = cut
        return cls(
            frontier=thresholds[cut],
            mid=thresholds[mid_cut],
            frontier_share=shares[cut],
            mid_share=shares[mid_cut] - shares[cut],
            quality_ratio=reached,
        )
