"""The router: turns a request (named model or `auto`) into a `RouteDecision`.

Pure: no I/O. `auto` uses the complexity scorer when one is loaded, else a documented length heuristic.
Per-request headers may force (`x-fastroute-tier`) or cap (`x-fastroute-max-tier`) the tier.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

import numpy as np
import numpy.typing as npt

from fastroute.catalogue import TIERS, Catalogue, ModelEntry
from fastroute.errors import InvalidRequest, ModelNotFound, PermissionDenied
from fastroute.routing.decision import RouteDecision

FORCE_TIER_HEADER = "x-fastroute-tier"
MAX_TIER_HEADER = "x-fastroute-max-tier"

# Without a trained scorer: prompts up to this many tokens go to budget, up to the second to mid.
HEURISTIC_TOKEN_BOUNDS = (300, 1500)


class TierScorer(Protocol):
    """Scores a prompt's features: P(the frontier model is needed), and the tier that score maps to."""

    def score(self, features: npt.NDArray[np.float32], text: str | None = None) -> float: ...

    def tier_for(self, score: float) -> str: ...


def tier_rank(tier: str) -> int:
    return TIERS.index(tier)


class Router:
    def __init__(self, catalogue: Catalogue, scorer: TierScorer | None, *, allow_tier_header: bool = True) -> None:
        self._catalogue = catalogue
        self._scorer = scorer
        self._allow_header = allow_tier_header

    @property
    def scorer(self) -> TierScorer | None:
        return self._scorer

    def decide(
        self,
        model: str,
        features: npt.NDArray[np.float32] | None,
        tokens: int,
        headers: Mapping[str, str],
        allowed_tiers: Collection[str] | None = None,
        text: str | None = None,
    ) -> RouteDecision:
        """Routes one request. `allowed_tiers` (from policy) bounds what `auto` may pick.

        `text` is the conversation text `features` were computed from; scorers that read its n-grams need it.
        """
        if model != "auto":
            return self._named(model, allowed_tiers)
        forced = headers.get(FORCE_TIER_HEADER)
        cap = headers.get(MAX_TIER_HEADER)
        if (forced or cap) and not self._allow_header:
            raise PermissionDenied("Tier override headers are disabled on this gateway.", param=FORCE_TIER_HEADER)
        score: float | None = None
        if forced:
            tier = _tier_header(forced, FORCE_TIER_HEADER)
            reason = f"forced by {FORCE_TIER_HEADER}"
        elif self._scorer is not None and features is not None:
            score = self._scorer.score(features, text)
            tier = self._scorer.tier_for(score)
            reason = f"classifier score={score:.3f}"
        else:
            low, high = HEURISTIC_TOKEN_BOUNDS
            tier = "budget" if tokens <= low else "mid" if tokens <= high else "frontier"
            reason = f"length heuristic tokens={tokens}"
        if cap:
            cap_tier = _tier_header(cap, MAX_TIER_HEADER)
            if tier_rank(tier) > tier_rank(cap_tier):
                tier, reason = cap_tier, f"{reason}; capped by {MAX_TIER_HEADER}"
        if allowed_tiers is not None and tier not in allowed_tiers:
            tier, reason = _nearest_allowed(tier, allowed_tiers), f"{reason}; {tier} not allowed by policy"
        chain = self._catalogue.tier_chain(tier)
        return RouteDecision(tier=tier, chain=chain, reason=reason, score=score)

    def _named(self, model: str, allowed_tiers: Collection[str] | None) -> RouteDecision:
        entry = self._catalogue.model(model)
        if entry is None:
            raise ModelNotFound(
                f"The model '{model}' does not exist on this gateway. Use 'auto' or one of GET /v1/models.",
                param="model",
            )
        if allowed_tiers is not None and entry.tier not in allowed_tiers:
            raise PermissionDenied(f"The model '{model}' ({entry.tier} tier) is not allowed by policy.", param="model")
        fallbacks = tuple(m for m in self._catalogue.tier_chain(entry.tier) if m.name != entry.name)
        return RouteDecision(tier=entry.tier, chain=(entry, *fallbacks), reason="model named by client")

    def models(self) -> list[ModelEntry]:
        return list(self._catalogue.models.values())


def _tier_header(value: str, header: str) -> str:
    tier = value.strip().lower()
    if tier not in TIERS:
        raise InvalidRequest(f"'{header}' must be one of {', '.join(TIERS)}.", param=header)
    return tier


def _nearest_allowed(tier: str, allowed: Collection[str]) -> str:
    """The closest allowed tier, preferring cheaper ones (a policy limit never escalates cost)."""
    if not allowed:
        raise PermissionDenied("Policy allows no tier for this application.")
    rank = tier_rank(tier)
    return min(allowed, key=lambda t: (abs(tier_rank(t) - rank), tier_rank(t)))
