"""Loads the shipped complexity scorer from `models/router/`, or returns None to use the length heuristic.

A model that exists but cannot be used (unreadable, or trained on another feature version) stops start-up
with `RouterModelError`: silently routing by length would change costs without anyone noticing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastroute.routing.live_share import LiveShareScorer
from fastroute.routing.router import TierScorer
from fastroute.routing.scorer import ComplexityScorer
from fastroute.settings import RouterSettings

log = logging.getLogger("fastroute.routing")


def load_scorer(models_dir: Path, settings: RouterSettings) -> TierScorer | None:
    """The trained scorer with thresholds calibrated to the settings' target; None when none is shipped."""
    if not (models_dir / "router" / "model.onnx").is_file():
        log.warning("no router model in %s; `auto` uses the length heuristic", models_dir / "router")
        return None
    scorer = ComplexityScorer.load(
        models_dir, quality_target=settings.quality_target, frontier_share=settings.frontier_share
    )
    log.info("router model %s loaded (features v%s)", scorer.model_version, scorer.feature_version)
    if settings.frontier_share is not None and settings.live_share_window > 0:
        t = scorer.thresholds
        log.info(
            "holding frontier share %.2f (mid %.2f) on the last %d requests",
            t.frontier_share, t.mid_share, settings.live_share_window,
        )
        return LiveShareScorer(scorer, t.frontier_share, t.mid_share, window=settings.live_share_window)
    return scorer
