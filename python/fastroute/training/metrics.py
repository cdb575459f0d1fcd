"""Router quality metrics (APGR, CPT, strong calls at a quality target, AIQ) over per-prompt outcomes.

Pure numpy: no I/O, no model. Definitions follow /work/shared/data/routing/README.md (RouteLLM, RouterBench):
prompts are ranked by score, the top fraction c goes to the strong model, the rest to the weak one. Ties in
score are split evenly (the expected value over a random order of tied prompts), so a constant score is
exactly random routing and the figures do not depend on row order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RoutingCurve:
    """Mean quality Q(c) at strong-call fractions c = k/n, k = 0..n."""

    share: FloatArray
    quality: FloatArray
    quality_strong: float
    quality_weak: float

    @property
    def pgr(self) -> FloatArray:
        """Performance gap recovered at each share; NaN-free (a zero gap gives PGR 0)."""
        gap = self.quality_strong - self.quality_weak
        if gap == 0.0:
            return np.zeros_like(self.quality)
        return (self.quality - self.quality_weak) / gap


def routing_curve(
    scores: NDArray[np.floating], strong: NDArray[np.floating], weak: NDArray[np.floating]
) -> RoutingCurve:
    """Quality when the k highest-scored prompts go to the strong model, for every k (ties averaged)."""
    s = np.asarray(scores, dtype=np.float64)
    st = np.asarray(strong, dtype=np.float64)
    wk = np.asarray(weak, dtype=np.float64)
    n = s.shape[0]
    if n == 0 or st.shape != s.shape or wk.shape != s.shape:
        raise ValueError("scores, strong and weak must be non-empty arrays of the same length")
    order = np.argsort(-s, kind="stable")
    gain = (st - wk)[order]
    sorted_scores = s[order]
    # Tie blocks: each prompt in a block gets the block's mean gain (expected value over random tie order).
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    block_sum = np.add.reduceat(gain, starts)
    block_len = np.diff(np.r_[starts, n])
    smoothed = np.repeat(block_sum / block_len, block_len)
    cum = np.r_[0.0, np.cumsum(smoothed)]
    base = float(wk.sum())
    quality = (base + cum) / n
    share = np.arange(n + 1, dtype=np.float64) / n
    return RoutingCurve(share, quality, float(st.mean()), float(wk.mean()))


def apgr(curve: RoutingCurve) -> float:
    """Area under PGR(c) over c in [0, 1] (trapezoid rule on the k/n grid)."""
    return float(np.trapezoid(curve.pgr, curve.share))


def cpt(curve: RoutingCurve, fraction: float) -> float:
    """Smallest strong-call share at which PGR reaches `fraction` (1.0 if never)."""
    hits = np.flatnonzero(curve.pgr >= fraction - 1e-12)
    return float(curve.share[hits[0]]) if hits.size else 1.0


def share_at_quality(curve: RoutingCurve, target: float) -> float:
    """Smallest strong-call share with Q(c) >= target * Q_strong (1.0 if never)."""
    hits = np.flatnonzero(curve.quality >= target * curve.quality_strong - 1e-12)
    return float(curve.share[hits[0]]) if hits.size else 1.0


def cost_saving(share: float, price_ratio: float) -> float:
    """Saving against all-strong when `share` of calls go strong and weak costs `price_ratio` of strong."""
    return 1.0 - (share + (1.0 - share) * price_ratio)


def aiq(curve: RoutingCurve) -> float:
    """RouterBench AIQ: area under the non-decreasing upper hull of (normalised cost, quality).

    Normalised cost of a routing mix is its strong-call share (cost is affine in it), so the points are
    (c, Q(c)); the hull is the upper concave envelope, then made non-decreasing left to right.
    """
    xs, ys = curve.share, curve.quality
    hull: list[int] = []
    for i in range(xs.shape[0]):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (xs[b] - xs[a]) * (ys[i] - ys[a]) - (ys[b] - ys[a]) * (xs[i] - xs[a])
            if cross >= 0.0:  # b lies on or below the chord a-i: not on the upper hull
                hull.pop()
            else:
                break
        hull.append(i)
    hx = xs[hull]
    hy = np.maximum.accumulate(ys[hull])
    return float(np.trapezoid(hy, hx))


@dataclass(frozen=True, slots=True)
class RouterMetrics:
    """Every figure `fastroute eval` prints for one score vector."""

    apgr: float
    cpt50: float
    cpt80: float
    share_at_95: float
    saving_at_95: float
    aiq: float

    def as_dict(self) -> dict[str, float]:
        return {
            "apgr": self.apgr,
            "cpt50": self.cpt50,
            "cpt80": self.cpt80,
            "share_at_95": self.share_at_95,
            "saving_at_95": self.saving_at_95,
            "aiq": self.aiq,
        }


METRIC_NAMES = ("apgr", "cpt50", "cpt80", "share_at_95", "saving_at_95", "aiq")


def router_metrics(
    scores: NDArray[np.floating],
    strong: NDArray[np.floating],
    weak: NDArray[np.floating],
    *,
    price_ratio: float = 0.05,
    quality_target: float = 0.95,
) -> RouterMetrics:
    """All metrics for one router's scores on one labelled set."""
    curve = routing_curve(scores, strong, weak)
    share95 = share_at_quality(curve, quality_target)
    return RouterMetrics(
        apgr=apgr(curve),
        cpt50=cpt(curve, 0.5),
        cpt80=cpt(curve, 0.8),
        share_at_95=share95,
        saving_at_95=cost_saving(share95, price_ratio),
        aiq=aiq(curve),
    )


def oracle_scores(strong: NDArray[np.floating], weak: NDArray[np.floating]) -> FloatArray:
    """The oracle ranks by the realised gain of the strong model."""
    return np.asarray(strong, dtype=np.float64) - np.asarray(weak, dtype=np.float64)


def bootstrap_metrics(
    scores: NDArray[np.floating],
    strong: NDArray[np.floating],
    weak: NDArray[np.floating],
    *,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    price_ratio: float = 0.05,
    quality_target: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of every `RouterMetrics` figure, resampling prompts with replacement."""
    s = np.asarray(scores, dtype=np.float64)
    st = np.asarray(strong, dtype=np.float64)
    wk = np.asarray(weak, dtype=np.float64)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in METRIC_NAMES}
    for _ in range(rounds):
        idx = rng.integers(0, s.shape[0], s.shape[0])
        if st[idx].mean() == wk[idx].mean():
            continue  # no gap to recover in this resample: PGR undefined
        m = router_metrics(s[idx], st[idx], wk[idx], price_ratio=price_ratio, quality_target=quality_target)
        for name, value in m.as_dict().items():
            samples[name].append(value)
    alpha = (1.0 - level) / 2.0
    result = {}
    for name, values in samples.items():
        lo, hi = np.quantile(np.asarray(values), [alpha, 1.0 - alpha])
        result[name] = (float(lo), float(hi))
    return result


def random_metrics(
    strong: NDArray[np.floating],
    weak: NDArray[np.floating],
    *,
    seeds: int = 10,
    price_ratio: float = 0.05,
    quality_target: float = 0.95,
) -> RouterMetrics:
    """Mean of each metric over `seeds` uniformly random rankings."""
    n = np.asarray(strong).shape[0]
    runs = [
        router_metrics(
            np.random.default_rng(seed).random(n),
            strong,
            weak,
            price_ratio=price_ratio,
            quality_target=quality_target,
        )
        for seed in range(seeds)
    ]
    return RouterMetrics(**{k: float(np.mean([r.as_dict()[k] for r in runs])) for k in METRIC_NAMES})


@dataclass(frozen=True, slots=True)
class ThresholdCurve:
    """What a score threshold t does on a labelled set: share sent strong (score >= t) and quality ratio.

    `quality_ratio` is Q(t) / Q_strong, where Q(t) takes the strong outcome for prompts scored >= t and the weak
    one otherwise. Thresholds are decreasing, so shares are non-decreasing.
    """

    threshold: list[float]
    strong_share: list[float]
    quality_ratio: list[float]

    def as_dict(self) -> dict[str, list[float]]:
        return {"threshold": self.threshold, "strong_share": self.strong_share, "quality_ratio": self.quality_ratio}


def threshold_curve(
    scores: NDArray[np.floating], strong: NDArray[np.floating], weak: NDArray[np.floating], *, points: int = 201
) -> ThresholdCurve:
    """The curve at `points` thresholds taken from the score quantiles, plus max + 1 (nobody strong)."""
    s = np.asarray(scores, dtype=np.float64)
    st = np.asarray(strong, dtype=np.float64)
    wk = np.asarray(weak, dtype=np.float64)
    q_strong = float(st.mean())
    if q_strong <= 0.0:
        raise ValueError("the strong model's mean quality must be positive to express quality as a ratio")
    candidates = np.unique(np.quantile(s, np.linspace(0.0, 1.0, points)))[::-1]
    thresholds = [float(s.max()) + 1.0, *(float(t) for t in candidates)]
    shares, ratios = [], []
    for t in thresholds:
        strong_mask = s >= t
        shares.append(float(strong_mask.mean()))
        ratios.append(float(np.where(strong_mask, st, wk).mean() / q_strong))
    return ThresholdCurve(thresholds, shares, ratios)
