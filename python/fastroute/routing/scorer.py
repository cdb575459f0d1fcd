"""`ComplexityScorer`: P(strong model needed) for one prompt's feature vector, from `models/router/`.

Loads the shipped ONNX model once (onnxruntime, one intra-op thread) and refuses a model whose feature
version differs from the native extractor's. A linear model (what `fastroute train` exports: features
clipped to the card's `model.clip` box, then a linear map) is also evaluated in numpy: its weights are read
back *through onnxruntime* (logits at the box's low corner and one step along each axis) and checked against
onnxruntime on random probes inside and outside the box at load time, so the fast path cannot drift from the
shipped artifact; per-call onnxruntime overhead (~10 µs) would eat a fifth of the routing budget.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import orjson

from fastroute import _native
from fastroute.errors import InternalError
from fastroute.routing.thresholds import Thresholds

MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
PROBES = 16
PROBE_TOLERANCE = 1e-4
Float32Array = npt.NDArray[np.float32]


class RouterModelError(InternalError):
    """The router model or its card is missing, unreadable or built for other features."""

    code = "router_model_invalid"


class ComplexityScorer:
    """Scores feature vectors and maps scores to tiers (see `Thresholds`)."""

    def __init__(self, session: ort.InferenceSession, card: dict[str, Any], thresholds: Thresholds) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._outputs = [o.name for o in session.get_outputs()]
        self.card = card
        self.thresholds = thresholds
        self.feature_version = int(card["feature_version"])
        self.model_version = str(card["model_version"])
        self._dim = int(card["feature_dim"])
        self._low: Float32Array | None
        self._high: Float32Array | None
        self._low, self._high = _clip_box(card, self._dim)
        self._linear = self._read_linear()

    @classmethod
    def load(
        cls,
        models_dir: Path,
        *,
        quality_target: float | None = None,
        frontier_share: float | None = None,
    ) -> ComplexityScorer:
        """Loads `models_dir/router/{model.onnx,card.json}` and calibrates tiers to the given target.

        Raises:
            RouterModelError: files missing/unreadable, or the card's feature version is not the native one.
        """
        router_dir = models_dir / "router"
        try:
            card = orjson.loads((router_dir / CARD_FILE).read_bytes())
            model_bytes = (router_dir / MODEL_FILE).read_bytes()
        except (OSError, orjson.JSONDecodeError) as e:
            raise RouterModelError(f"cannot read the router model in {router_dir}: {e}") from e
        version = card.get("feature_version")
        if version != _native.FEATURE_VERSION or card.get("feature_dim") != _native.FEATURE_DIM:
            raise RouterModelError(
                f"router model in {router_dir} was trained on feature version {version} "
                f"(dim {card.get('feature_dim')}) but this build extracts version {_native.FEATURE_VERSION} "
                f"(dim {_native.FEATURE_DIM}); retrain it with `fastroute train`"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise RouterModelError(f"onnxruntime cannot load {router_dir / MODEL_FILE}: {e}") from e
        thresholds = Thresholds.calibrate(card, quality_target=quality_target, frontier_share=frontier_share)
        return cls(session, card, thresholds)

    @property
    def uses_fast_path(self) -> bool:
        """True when scores come from numpy (a verified linear model), False when from onnxruntime."""
        return self._linear is not None

    def _run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Raw onnxruntime scores (logits if the model exports them, else scores) for a batch."""
        result = self._session.run(None, {self._input: batch})
        return np.asarray(result[0], dtype=np.float32).reshape(-1)

    def _run_logits(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float64] | None:
        if "logit" not in self._outputs:
            return None
        out = self._session.run(["logit"], {self._input: batch})
        return np.asarray(out[0], dtype=np.float64).reshape(-1)

    def _read_linear(self) -> tuple[npt.NDArray[np.float32], float] | None:
        """(float32 weights, bias) if the model is linear inside the clip box, else None (use onnxruntime).

        Read at the box's low corner and one step along each axis; slots whose box is a single point (or, for an
        unclipped model, every slot) are read at 0 and 1. float32 throughout the fast path: mixing in float64
        bounds cost ~3 µs per call in casts, and onnxruntime computes in float32 anyway.
        """
        low = self._low.astype(np.float64) if self._low is not None else np.zeros(self._dim)
        high = self._high.astype(np.float64) if self._high is not None else np.ones(self._dim)
        step = np.where(high > low, high - low, 1.0)
        basis = np.vstack([low, low + np.diag(step)]).astype(np.float32)
        logits = self._run_logits(basis)
        if logits is None:
            return None
        base = float(logits[0])
        weights = (logits[1:] - base) / step
        if self._high is not None:
            weights[high <= low] = 0.0  # pinned by the clip: the slot cannot move the score
        linear = weights.astype(np.float32), base - float(np.dot(weights, low))
        centre, spread = (low + high) / 2.0, np.maximum(high - low, 1.0)
        rng = np.random.default_rng(0)
        probes = (centre + spread * rng.normal(size=(PROBES, self._dim))).astype(np.float32)
        expected = self._run_logits(probes)
        assert expected is not None
        got = np.array([self._fast_logit(linear, p) for p in probes])
        if not np.allclose(got, expected, atol=PROBE_TOLERANCE, rtol=PROBE_TOLERANCE):
            return None
        return linear

    def _fast_logit(self, linear: tuple[npt.NDArray[np.float32], float], features: npt.NDArray[np.float32]) -> float:
        weights, bias = linear
        if self._low is None or self._high is None:
            return float(np.dot(weights, features)) + bias
        return float(np.dot(weights, np.minimum(np.maximum(features, self._low), self._high))) + bias

    def score(self, features: npt.NDArray[np.float32]) -> float:
        """P(the strong model is needed) for one feature vector of length `feature_dim`."""
        if self._linear is not None:
            logit = self._fast_logit(self._linear, features)
            return 1.0 / (1.0 + math.exp(-logit)) if logit > -700.0 else 0.0
        return float(self._run(np.asarray(features, dtype=np.float32).reshape(1, -1))[0])

    def score_onnx(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Scores a batch (N, feature_dim) through onnxruntime (reference path; used for evaluation)."""
        result = self._session.run(["score"] if "score" in self._outputs else None, {self._input: features})
        return np.asarray(result[0], dtype=np.float32).reshape(-1)

    def tier_for(self, score: float) -> str:
        return self.thresholds.tier_for(score)


def _clip_box(card: dict[str, Any], dim: int) -> tuple[Float32Array | None, Float32Array | None]:
    """The card's per-feature clip bounds (`model.clip.low/high`), or (None, None) for an unclipped model."""
    clip = card.get("model", {}).get("clip")
    if not clip:
        return None, None
    try:
        low = np.asarray(clip["low"], dtype=np.float32)
        high = np.asarray(clip["high"], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise RouterModelError(f"the router card's clip bounds are unreadable: {e}") from e
    if low.shape != (dim,) or high.shape != (dim,) or np.any(low > high):
        raise RouterModelError(f"the router card's clip bounds must be {dim} pairs with low <= high")
    return low, high
