"""Typed wrappers over the private `_native` module (interim: placeholder analysis until the hot path lands)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fastroute import _native


@dataclass(frozen=True, slots=True)
class PromptAnalysis:
    features: npt.NDArray[np.float32]
    embedding: npt.NDArray[np.float32] | None
    key: str
    tokens: int


class PromptAnalyzer:
    @classmethod
    def from_models_dir(cls, models_dir: Path) -> PromptAnalyzer:
        return cls()

    def analyze(self, text: str) -> PromptAnalysis:
        features, key, tokens = _native.analyze(text)
        return PromptAnalysis(features, None, key, tokens)
