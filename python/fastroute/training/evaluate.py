"""`fastroute eval`: scores labelled JSONL with the shipped router and prints APGR, CPT, AIQ vs random and oracle.

Scores come from the shipped ONNX model through onnxruntime (the reference path) over serving-path features.
Random routing is the mean over `--random-seeds` random rankings; the oracle ranks by realised gain. Sets
under 1,000 prompts get percentile bootstrap intervals (or any set with `--bootstrap N`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np
import orjson
from numpy.typing import NDArray

from fastroute.env_values import env_path
from fastroute.native import PromptAnalyzer
from fastroute.routing.scorer import ComplexityScorer
from fastroute.settings import REPO_MODELS_DIR
from fastroute.training.dataset import feature_matrix, outcomes, read_rows
from fastroute.training.metrics import (
    METRIC_NAMES,
    bootstrap_metrics,
    oracle_scores,
    random_metrics,
    router_metrics,
    routing_curve,
)

SMALL_SET = 1000
LABELS = {
    "apgr": "APGR",
    "cpt50": "CPT(50%)",
    "cpt80": "CPT(80%)",
    "share_at_95": "strong share @95% quality",
    "saving_at_95": "cost saving @95% quality",
    "aiq": "AIQ",
}


def report(
    scores: NDArray[np.float64],
    strong: NDArray[np.float64],
    weak: NDArray[np.float64],
    *,
    out: TextIO,
    price_ratio: float,
    bootstrap: int,
    random_seeds: int,
) -> dict[str, dict[str, float]]:
    """Prints the metric table and returns {"router"|"random"|"oracle": metrics} (plus "ci_lo"/"ci_hi")."""
    router = router_metrics(scores, strong, weak, price_ratio=price_ratio)
    rand = random_metrics(strong, weak, seeds=random_seeds, price_ratio=price_ratio)
    oracle = router_metrics(oracle_scores(strong, weak), strong, weak, price_ratio=price_ratio)
    result: dict[str, dict[str, float]] = {
        "router": router.as_dict(),
        "random": rand.as_dict(),
        "oracle": oracle.as_dict(),
    }
    intervals = bootstrap_metrics(scores, strong, weak, rounds=bootstrap, price_ratio=price_ratio) if bootstrap else {}
    if intervals:
        result["ci_lo"] = {k: v[0] for k, v in intervals.items()}
        result["ci_hi"] = {k: v[1] for k, v in intervals.items()}
    n = strong.shape[0]
    print(
        f"prompts: {n}  quality strong {strong.mean():.3f}  weak {weak.mean():.3f}  price ratio {price_ratio}",
        file=out,
    )
    ci_head = f"  {'95% CI (bootstrap ' + str(bootstrap) + ')':>24}" if intervals else ""
    print(f"{'metric':<28}{'router':>9}{ci_head}{'random':>9}{'oracle':>9}", file=out)
    for name in METRIC_NAMES:
        ci = f"  [{intervals[name][0]:.3f}, {intervals[name][1]:.3f}]".rjust(26) if intervals else ""
        print(
            f"{LABELS[name]:<28}{result['router'][name]:>9.3f}{ci}{result['random'][name]:>9.3f}"
            f"{result['oracle'][name]:>9.3f}",
            file=out,
        )
    return result


def plot(path: Path, scores: NDArray[np.float64], strong: NDArray[np.float64], weak: NDArray[np.float64]) -> None:
    """PNG of mean quality vs strong-call share for the router, random routing and the oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, s, style in (
        ("router", scores, "-"),
        ("oracle", oracle_scores(strong, weak), ":"),
        ("random", np.zeros_like(scores), "--"),  # ties are averaged: a constant score is exact random routing
    ):
        curve = routing_curve(s, strong, weak)
        ax.plot(curve.share, curve.quality, style, label=label)
    ax.axhline(0.95 * strong.mean(), color="grey", linewidth=0.8, label="95% of strong quality")
    ax.set_xlabel("share of calls sent to the strong model")
    ax.set_ylabel("mean quality")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fastroute eval", description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="labelled JSONL (prompt|turns, strong, weak)")
    p.add_argument("--split", default=None, help="only rows whose `split` equals this (default: all rows)")
    p.add_argument("--scores-out", type=Path, default=None, help='write {"index", "score", "tier"} per row')
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of quality vs strong-call share")
    p.add_argument("--models-dir", type=Path, default=None, help="default: FASTROUTE_MODELS_DIR or models/")
    p.add_argument("--price-ratio", type=float, default=0.05, help="weak/strong price per call (default 0.05)")
    p.add_argument("--bootstrap", type=int, default=None, help=f"rounds (default 1000 under {SMALL_SET} rows)")
    p.add_argument("--random-seeds", type=int, default=20)
    p.add_argument("--quality-target", type=float, default=None, help="tier calibration for --scores-out")
    p.add_argument("--frontier-share", type=float, default=None, help="tier calibration for --scores-out")
    return p


def main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    args = _parser().parse_args(list(argv))
    models_dir: Path = args.models_dir or env_path(env, "FASTROUTE_MODELS_DIR", REPO_MODELS_DIR) or REPO_MODELS_DIR
    scorer = ComplexityScorer.load(models_dir, quality_target=args.quality_target, frontier_share=args.frontier_share)
    indexed = [(i, r) for i, r in enumerate(read_rows(args.data)) if args.split is None or r.split == args.split]
    if not indexed:
        print(f"no rows in {args.data}" + (f" with split={args.split}" if args.split else ""), file=sys.stderr)
        return 2
    rows = [r for _, r in indexed]
    x = feature_matrix(rows, PromptAnalyzer.from_models_dir(models_dir))
    scores = scorer.score_onnx(x, [r.text for r in rows] if scorer.uses_text else None).astype(np.float64)
    strong, weak = outcomes(rows)
    if strong.mean() == weak.mean():
        print("strong and weak have the same mean quality: there is no gap to recover", file=sys.stderr)
        return 2
    bootstrap = args.bootstrap if args.bootstrap is not None else (1000 if len(rows) < SMALL_SET else 0)
    print(f"model {scorer.model_version} on {args.data.name}" + (f" split={args.split}" if args.split else ""))
    report(
        scores,
        strong,
        weak,
        out=sys.stdout,
        price_ratio=args.price_ratio,
        bootstrap=bootstrap,
        random_seeds=args.random_seeds,
    )
    if args.scores_out is not None:
        with args.scores_out.open("wb") as f:
            for (index, _), score in zip(indexed, scores, strict=True):
                line = {"index": index, "score": float(score), "tier": scorer.tier_for(float(score))}
                f.write(orjson.dumps(line) + b"\n")
    if args.plot is not None:
        plot(args.plot, scores, strong, weak)
    return 0
