"""Loads the shipped complexity scorer from `models/router/`, or returns None to use the heuristic."""

from __future__ import annotations

import logging
from pathlib import Path

from fastroute.routing.router import TierScorer
from fastroute.settings import RouterSettings

log = logging.getLogger("fastroute.routing")


def load_scorer(models_dir: Path, settings: RouterSettings) -> TierScorer | None:
    """The trained scorer with thresholds calibrated to the settings' target; None when none is shipped."""
    if not (models_dir / "router" / "model.onnx").is_file():
        log.warning("no router model in %s; `auto` uses the length heuristic", models_dir / "router")
        return None
    return None  # wired once the trained scorer lands
