"""The router's hashed word n-gram half: sparse n-gram matrices, the n-gram LR, and its blend with the structural LR.

Pure: numpy/scipy/sklearn over arrays, no files. The n-gram vector of a text is `fastroute._native`'s (rust/src/
ngrams.rs), exactly what the scorer computes per request. The blend is
`slope * ((1 - w) * hand_logit / sd_hand + w * ngram_logit / sd_ngram) + offset`: each half's logit is put on a
common scale (its standard deviation over the rows it was fitted on), mixed with weight `w`, and the mix is
calibrated to a probability (Platt) on out-of-fold logits. All of it folds into one linear map over
(features, n-gram vector), which is what the ONNX graph holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from fastroute import _native
from fastroute.training.metrics import apgr, routing_curve

DEFAULT_NGRAM_C_GRID = (0.1, 1.0)
# Off by default (w = 0: the structural model alone): on the holdout sets the blend won on MMLU and MT-Bench and
# lost on GSM8K (models/router/CARD.md). `fastroute train --blend-grid 0,0.2,0.35,0.5` searches it; w = 0 stays in
# the grid so the blend must earn its place on the same train-only criterion.
DEFAULT_BLEND_GRID = (0.0,)
SEARCH_BLEND_GRID = (0.0, 0.2, 0.35, 0.5)


def ngram_matrix(texts: Sequence[str]) -> sparse.csr_matrix:
    """One L2-normalised n-gram row per text, shape (len(texts), NGRAM_BUCKETS), float64 (sklearn's dtype)."""
    indices: list[NDArray[np.uint32]] = []
    data: list[NDArray[np.float64]] = []
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    for i, text in enumerate(texts):
        buckets = _native.ngram_buckets(text)
        indices.append(buckets)
        # The native vector holds 1/sqrt(n) as float32: use the same value so both paths agree to the bit.
        value = np.float64(np.float32(1.0 / np.sqrt(len(buckets)))) if len(buckets) else 0.0
        data.append(np.full(len(buckets), value))
        indptr[i + 1] = indptr[i] + len(buckets)
    flat_indices = np.concatenate(indices).astype(np.int64) if indices else np.zeros(0, dtype=np.int64)
    flat_data = np.concatenate(data) if data else np.zeros(0)
    return sparse.csr_matrix((flat_data, flat_indices, indptr), shape=(len(texts), int(_native.NGRAM_BUCKETS)))


@dataclass(frozen=True, slots=True)
class NgramModel:
    """score = sigmoid(ngram_vector @ weights + bias)."""

    weights: NDArray[np.float64]
    bias: float
    classifier: LogisticRegression

    def logits(self, m: sparse.csr_matrix) -> NDArray[np.float64]:
        return np.asarray(m @ self.weights, dtype=np.float64) + self.bias


def fit_ngrams(m: sparse.csr_matrix, y: NDArray[np.int64], c: float) -> NgramModel:
    """L2 logistic regression over n-gram rows (lbfgs: deterministic)."""
    clf = LogisticRegression(C=c, max_iter=3000)
    clf.fit(m, y)
    return NgramModel(np.asarray(clf.coef_[0], dtype=np.float64), float(clf.intercept_[0]), clf)


def logit_scale(logits: NDArray[np.float64]) -> float:
    """The spread a half's logits are divided by before mixing (1 for a constant half)."""
    sd = float(np.std(logits))
    return sd if sd > 0.0 else 1.0


def mix(
    hand: NDArray[np.float64], ngram: NDArray[np.float64], w: float, hand_sd: float, ngram_sd: float
) -> NDArray[np.float64]:
    """The uncalibrated blend of two halves' logits."""
    return (1.0 - w) * hand / hand_sd + w * ngram / ngram_sd


@dataclass(frozen=True, slots=True)
class Calibration:
    """Platt scaling of the blended logit: probability = sigmoid(slope * blend + offset)."""

    slope: float
    offset: float


def calibrate(blend_logits: NDArray[np.float64], y: NDArray[np.int64]) -> Calibration:
    """Fits the 1-D logistic map from (out-of-fold) blended logits to the labels, without regularisation."""
    clf = LogisticRegression(C=1e6, max_iter=1000)
    clf.fit(blend_logits.reshape(-1, 1), y)
    return Calibration(float(clf.coef_[0][0]), float(clf.intercept_[0]))


@dataclass(frozen=True, slots=True)
class FoldedBlend:
    """The blend as one linear map: logit = features @ hand_weights + ngram_vector @ ngram_weights + bias."""

    hand_weights: NDArray[np.float64]
    ngram_weights: NDArray[np.float64]
    bias: float


def fold_blend(
    hand_weights: NDArray[np.float64],
    hand_bias: float,
    ngrams: NgramModel,
    w: float,
    hand_sd: float,
    ngram_sd: float,
    calibration: Calibration,
) -> FoldedBlend:
    a = calibration.slope * (1.0 - w) / hand_sd
    b = calibration.slope * w / ngram_sd
    return FoldedBlend(
        hand_weights=a * np.asarray(hand_weights, dtype=np.float64),
        ngram_weights=b * ngrams.weights,
        bias=a * hand_bias + b * ngrams.bias + calibration.offset,
    )


@dataclass(frozen=True, slots=True)
class Blend:
    """A fitted blend: both halves' parameters, the mix and its calibration, and the folded linear map."""

    ngrams: NgramModel
    ngram_c: float
    weight: float
    hand_sd: float
    ngram_sd: float
    calibration: Calibration
    folded: FoldedBlend
    mean_ngram_logit: float

    def logits(self, hand_logits: NDArray[np.float64], m: sparse.csr_matrix) -> NDArray[np.float64]:
        """Calibrated blended logits from the structural half's logits and n-gram rows (the training library's)."""
        raw = mix(hand_logits, self.ngrams.logits(m), self.weight, self.hand_sd, self.ngram_sd)
        return self.calibration.slope * raw + self.calibration.offset


# (rows to fit on, rows to score) -> the structural half's logits on (fit rows, scored rows).
HandLogits = Callable[[NDArray[np.bool_], NDArray[np.bool_]], tuple[NDArray[np.float64], NDArray[np.float64]]]


def apgr_per_source(
    scores: NDArray[np.float64], sources: NDArray[np.str_], strong: NDArray[np.float64], weak: NDArray[np.float64]
) -> dict[str, float]:
    result = {}
    for source in sorted({str(s) for s in sources}):
        mask = sources == source
        if strong[mask].mean() != weak[mask].mean():
            result[source] = apgr(routing_curve(scores[mask], strong[mask], weak[mask]))
    return result


@dataclass(frozen=True, slots=True)
class BlendSearch:
    """Every (n-gram C, weight) tried, the chosen one, and its pooled raw out-of-fold blended logits."""

    grid: list[dict[str, Any]]
    ngram_c: float
    weight: float
    oof_logits: NDArray[np.float64]
    apgr: dict[str, float]
    cross_source_apgr: dict[str, float]


@dataclass(frozen=True, slots=True)
class _Half:
    """One fit's logits on the scored rows and its scale on the fitted rows."""

    logits: NDArray[np.float64]
    sd: float


def _halves(
    m: sparse.csr_matrix,
    y: NDArray[np.int64],
    fit: NDArray[np.bool_],
    score: NDArray[np.bool_],
    hand_logits: HandLogits,
    ngram_c_grid: Sequence[float],
) -> tuple[_Half, dict[float, _Half]]:
    hand_fit, hand_scored = hand_logits(fit, score)
    ngram: dict[float, _Half] = {}
    for c in ngram_c_grid:
        model = fit_ngrams(m[fit], y[fit], c)
        ngram[c] = _Half(model.logits(m[score]), logit_scale(model.logits(m[fit])))
    return _Half(hand_scored, logit_scale(hand_fit)), ngram


def search_blend(
    m: sparse.csr_matrix,
    y: NDArray[np.int64],
    fold: NDArray[np.int64],
    sources: NDArray[np.str_],
    strong: NDArray[np.float64],
    weak: NDArray[np.float64],
    hand_logits: HandLogits,
    *,
    ngram_c_grid: Sequence[float] = DEFAULT_NGRAM_C_GRID,
    blend_grid: Sequence[float] = DEFAULT_BLEND_GRID,
) -> BlendSearch:
    """Chooses the n-gram C and the blend weight on the training rows alone.

    Criterion: the mean of the fold-by-fold APGR per source (folds grouped by subject, as for C) and of the
    cross-source APGR (fit on one file, score another), so a blend must also carry over to a source it never saw,
    the proxy for the gateway's own traffic. Ties keep the earlier grid entry (w = 0 first: no n-grams).
    """
    folds: list[tuple[NDArray[np.bool_], _Half, dict[float, _Half]]] = []
    for k in sorted({int(f) for f in fold}):
        held = fold == k
        if held.all() or y[~held].min() == y[~held].max():
            continue
        folds.append((held, *_halves(m, y, ~held, held, hand_logits, ngram_c_grid)))
    transfers: list[tuple[str, NDArray[np.bool_], _Half, dict[float, _Half]]] = []
    names = sorted({str(s) for s in sources})
    for fit_on in names:
        fit = sources == fit_on
        if y[fit].min() == y[fit].max():
            continue
        for score_on in names:
            score = sources == score_on
            if score_on != fit_on and strong[score].mean() != weak[score].mean():
                transfers.append(
                    (f"{fit_on}->{score_on}", score, *_halves(m, y, fit, score, hand_logits, ngram_c_grid))
                )
    grid: list[dict[str, Any]] = []
    best: tuple[float, float, float, NDArray[np.float64], dict[str, float], dict[str, float]] | None = None
    for c in ngram_c_grid:
        for w in blend_grid:
            per_fold: dict[str, list[float]] = {}
            oof = np.zeros(len(y))
            for held, hand, ngram in folds:
                raw = mix(hand.logits, ngram[c].logits, w, hand.sd, ngram[c].sd)
                oof[held] = raw
                for source, value in apgr_per_source(raw, sources[held], strong[held], weak[held]).items():
                    per_fold.setdefault(source, []).append(value)
            cv = {source: float(np.mean(v)) for source, v in sorted(per_fold.items())}
            transfer = {
                name: apgr(
                    routing_curve(
                        mix(hand.logits, ngram[c].logits, w, hand.sd, ngram[c].sd), strong[score], weak[score]
                    )
                )
                for name, score, hand, ngram in transfers
            }
            values = [*cv.values(), *transfer.values()]
            criterion = float(np.mean(values)) if values else 0.0
            grid.append({"ngram_C": c, "weight": w, "criterion": criterion, "apgr": cv, "cross_source_apgr": transfer})
            if best is None or criterion > best[0]:
                best = (criterion, c, w, oof, cv, transfer)
    if best is None:
        raise ValueError("the blend grid and the n-gram C grid must not be empty")
    return BlendSearch(grid, *best[1:])
