"""The router: named models, auto with a scorer or the heuristic, tier headers, policy bounds."""

from __future__ import annotations

import numpy as np
import pytest

from fastroute.catalogue import Catalogue
from fastroute.errors import InvalidRequest, ModelNotFound, PermissionDenied
from fastroute.routing.router import Router

CAT = Catalogue.default()
FEATS = np.zeros(4, dtype=np.float32)


class FixedScorer:
    def __init__(self, score: float) -> None:
        self.value = score

    def score(self, features: np.ndarray, text: str | None = None) -> float:
        return self.value

    def tier_for(self, score: float) -> str:
        return "budget" if score < 0.3 else "mid" if score < 0.7 else "frontier"


def test_named_model_keeps_its_tier_with_fallbacks_after_it() -> None:
    d = Router(CAT, None).decide("gpt-4o-mini", FEATS, 10, {})
    assert d.model.name == "gpt-4o-mini" and d.tier == "budget"
    assert d.chain[0].name == "gpt-4o-mini"


def test_unknown_model_is_404() -> None:
    with pytest.raises(ModelNotFound):
        Router(CAT, None).decide("gpt-99", FEATS, 10, {})


@pytest.mark.parametrize(("score", "tier"), [(0.1, "budget"), (0.5, "mid"), (0.9, "frontier")])
def test_auto_uses_the_scorer(score: float, tier: str) -> None:
    d = Router(CAT, FixedScorer(score)).decide("auto", FEATS, 10, {})
    assert d.tier == tier and d.score == score
    assert "classifier" in d.reason


class TextScorer(FixedScorer):
    """Scores by whether the text it was given mentions a proof (None when no text came through)."""

    def score(self, features: np.ndarray, text: str | None = None) -> float:
        return 0.9 if text is not None and "proof" in text else 0.1


def test_auto_hands_the_conversation_text_to_the_scorer() -> None:
    r = Router(CAT, TextScorer(0.0))
    assert r.decide("auto", FEATS, 10, {}, text="<user> write the proof").tier == "frontier"
    assert r.decide("auto", FEATS, 10, {}, text="<user> write a poem").tier == "budget"
    assert r.decide("auto", FEATS, 10, {}).tier == "budget"


def test_header_forces_and_caps_and_can_be_disabled() -> None:
    r = Router(CAT, FixedScorer(0.9))
    assert r.decide("auto", FEATS, 10, {"x-fastroute-tier": "budget"}).tier == "budget"
    assert r.decide("auto", FEATS, 10, {"x-fastroute-max-tier": "mid"}).tier == "mid"
    with pytest.raises(InvalidRequest):
        r.decide("auto", FEATS, 10, {"x-fastroute-tier": "gold"})
    with pytest.raises(PermissionDenied):
        Router(CAT, None, allow_tier_header=False).decide("auto", FEATS, 10, {"x-fastroute-tier": "budget"})


def test_policy_bounds_auto_to_allowed_tiers_and_refuses_named_models_outside() -> None:
    r = Router(CAT, FixedScorer(0.9))
    assert r.decide("auto", FEATS, 10, {}, allowed_tiers={"budget", "mid"}).tier == "mid"
    with pytest.raises(PermissionDenied):
        r.decide("gpt-4o", FEATS, 10, {}, allowed_tiers={"budget"})


def test_heuristic_without_scorer_orders_by_length() -> None:
    r = Router(CAT, None)
    assert r.decide("auto", None, 20, {}).tier == "budget"
    assert r.decide("auto", None, 5000, {}).tier == "frontier"
