"""`ComplexityScorer`: P(strong model needed) for one prompt's feature vector, from `models/router/`.

Loads the shipped ONNX model once (onnxruntime, one intra-op thread) and refuses a model whose feature
version differs from the native extractor's. A linear model (what `fastroute train` exports: features
clipped to the card's `model.clip` box, then a linear map) is also evaluated in numpy: its weights are read
back *through onnxruntime* (logits at the box's low corner and one step along each axis) and checked against
onnxruntime on random probes inside and outside the box at load time, so the fast path cannot drift from the
shipped artifact; per-call onnxruntime overhead (~10 µs) would eat a fifth of the routing budget.

A blended model (`model.kind` "logistic_regression+ngrams") also takes the conversation text's hashed word
n-gram vector (`fastroute._native.ngram_vector`, layout `model.ngrams.version`) as a second input. Its n-gram
weights are read from the graph's `ngram_weights` output into a native `NgramTable`, which scores the text in
one pass without building the vector; the load-time probes then run real texts through both paths.
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
NGRAM_INPUT = "ngrams"
NGRAM_WEIGHTS_OUTPUT = "ngram_weights"
ONNX_BATCH = 256  # rows per onnxruntime call when scoring many texts (dense n-gram rows are 64 KiB each)
PROBE_WORDS = (
    "solve explain write python function code proof integral story poem translate summarise compare list the of "
    "which following step by why how many total cost email essay haiku sort array derive theorem capital"
).split()


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
        inputs = [i.name for i in session.get_inputs()]
        self._ngram_input = NGRAM_INPUT if NGRAM_INPUT in inputs else None
        ngram_card = card.get("model", {}).get("ngrams") or {}
        # Without the text the n-gram half contributes its training-set mean (see `score`).
        self._ngram_mean = float(ngram_card.get("mean_logit", 0.0))
        self._ngrams: _native.NgramTable | None = None
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
        ngrams = (card.get("model") or {}).get("ngrams")
        if ngrams and (
            ngrams.get("version") != _native.NGRAM_VERSION or ngrams.get("buckets") != _native.NGRAM_BUCKETS
        ):
            raise RouterModelError(
                f"router model in {router_dir} was trained on n-gram version {ngrams.get('version')} "
                f"({ngrams.get('buckets')} buckets) but this build hashes version {_native.NGRAM_VERSION} "
                f"({_native.NGRAM_BUCKETS} buckets); retrain it with `fastroute train`"
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

    @property
    def uses_text(self) -> bool:
        """True when the model also scores the conversation text's n-grams (pass `text` to `score`)."""
        return self._ngram_input is not None

    def _feeds(
        self, batch: npt.NDArray[np.float32], ngrams: npt.NDArray[np.float32] | None = None
    ) -> dict[str, npt.NDArray[np.float32]]:
        feeds = {self._input: batch}
        if self._ngram_input is not None:
            if ngrams is None:
                ngrams = np.zeros((batch.shape[0], int(_native.NGRAM_BUCKETS)), dtype=np.float32)
            feeds[self._ngram_input] = ngrams
        return feeds

    def _run(self, batch: npt.NDArray[np.float32], ngrams: npt.NDArray[np.float32] | None = None) -> Float32Array:
        """Onnxruntime scores for a batch (n-gram rows default to empty texts)."""
        name = "score" if "score" in self._outputs else self._outputs[0]
        result = self._session.run([name], self._feeds(batch, ngrams))
        return np.asarray(result[0], dtype=np.float32).reshape(-1)

    def _run_logits(
        self, batch: npt.NDArray[np.float32], ngrams: npt.NDArray[np.float32] | None = None
    ) -> npt.NDArray[np.float64] | None:
        if "logit" not in self._outputs:
            return None
        out = self._session.run(["logit"], self._feeds(batch, ngrams))
        return np.asarray(out[0], dtype=np.float64).reshape(-1)

    def _read_ngram_table(self) -> _native.NgramTable | None:
        """The graph's n-gram weights (its `ngram_weights` output) as a native table, or None without one."""
        if self._ngram_input is None or NGRAM_WEIGHTS_OUTPUT not in self._outputs:
            return None
        out = self._session.run([NGRAM_WEIGHTS_OUTPUT], self._feeds(np.zeros((1, self._dim), dtype=np.float32)))
        weights = np.ascontiguousarray(np.asarray(out[0], dtype=np.float32).reshape(-1))
        if weights.shape != (int(_native.NGRAM_BUCKETS),):
            raise RouterModelError(f"the router's n-gram weights have shape {weights.shape}")
        return _native.NgramTable(weights)

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
        texts = [" ".join(rng.choice(PROBE_WORDS, size=int(rng.integers(0, 40)))) for _ in range(PROBES)]
        table = self._read_ngram_table()
        if self._ngram_input is not None and table is None:
            return None
        dense = np.stack([_native.ngram_vector(t) for t in texts]) if table is not None else None
        expected = self._run_logits(probes, dense)
        assert expected is not None
        got = np.array([self._fast_logit(linear, p) for p in probes])
        if table is not None:
            got += np.array([table.dot(t) for t in texts])
        if not np.allclose(got, expected, atol=PROBE_TOLERANCE, rtol=PROBE_TOLERANCE):
            return None
        self._ngrams = table
        return linear

    def _fast_logit(self, linear: tuple[npt.NDArray[np.float32], float], features: npt.NDArray[np.float32]) -> float:
        weights, bias = linear
        if self._low is None or self._high is None:
            return float(np.dot(weights, features)) + bias
        return float(np.dot(weights, np.minimum(np.maximum(features, self._low), self._high))) + bias

    def score(self, features: npt.NDArray[np.float32], text: str | None = None) -> float:
        """P(the strong model is needed) for one feature vector of length `feature_dim` and its text.

        `text` is the conversation text the features came from; a model that `uses_text` needs it (without it,
        the n-gram half counts as its training-set mean, which keeps tiers sensible but ranks by structure only).
        """
        if self._linear is not None:
            logit = self._fast_logit(self._linear, features)
            if self._ngrams is not None:
                logit += self._ngrams.dot(text) if text is not None else self._ngram_mean
            return 1.0 / (1.0 + math.exp(-logit)) if logit > -700.0 else 0.0
        batch = np.asarray(features, dtype=np.float32).reshape(1, -1)
        if self._ngram_input is None or text is None:
            return float(self._run(batch)[0])
        return float(self._run(batch, _native.ngram_vector(text).reshape(1, -1))[0])

    def score_onnx(self, features: npt.NDArray[np.float32], texts: list[str] | None = None) -> Float32Array:
        """Scores a batch (N, feature_dim) [and their texts] through onnxruntime (reference path, for evaluation).

        Raises:
            ValueError: the model `uses_text` and `texts` is missing or not one per row.
        """
        if self._ngram_input is None:
            return self._run(np.asarray(features, dtype=np.float32))
        if texts is None or len(texts) != features.shape[0]:
            raise ValueError("this router model scores n-grams: give one text per feature row")
        parts = [
            self._run(
                np.asarray(features[i : i + ONNX_BATCH], dtype=np.float32),
                np.stack([_native.ngram_vector(t) for t in texts[i : i + ONNX_BATCH]]),
            )
            for i in range(0, len(texts), ONNX_BATCH)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

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
