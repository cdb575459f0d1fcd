"""`fastroute eval` end to end on a tiny hand-made set, checked against an independent computation."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import orjson
import pytest

from fastroute.native import PromptAnalyzer
from fastroute.training import evaluate
from fastroute.training.train import train, write_model
from tests.unit.training.synthetic import synthetic_rows, write_jsonl

MODELS = Path(__file__).resolve().parents[3] / "models"


def independent_apgr(scores: list[float], strong: list[float], weak: list[float]) -> float:
    """APGR by plain loops: rank by score, step k over 0..n, trapezoid on PGR (distinct scores)."""
    n = len(scores)
    order = sorted(range(n), key=lambda i: -scores[i])
    q_strong, q_weak = sum(strong) / n, sum(weak) / n
    pgr = []
    for k in range(n + 1):
        top = set(order[:k])
        q = sum(strong[i] if i in top else weak[i] for i in range(n)) / n
        pgr.append((q - q_weak) / (q_strong - q_weak))
    return sum((pgr[k] + pgr[k + 1]) / 2 / n for k in range(n))


def test_eval_numbers_match_an_independent_computation(tmp_path: Path) -> None:
    analyzer = PromptAnalyzer.from_models_dir(MODELS)
    result = train(synthetic_rows(seed=0), analyzer, seed=0, folds=4, c_grid=[1.0])
    write_model(result, tmp_path / "models" / "router")
    held_out = synthetic_rows(n=12, seed=7)
    data = tmp_path / "tiny.jsonl"
    write_jsonl(data, held_out, split="holdout")
    scores_out, png = tmp_path / "scores.jsonl", tmp_path / "curve.png"
    out = io.StringIO()
    with redirect_stdout(out):
        code = evaluate.main(
            [
                str(data),
                "--models-dir",
                str(tmp_path / "models"),
                "--scores-out",
                str(scores_out),
                "--plot",
                str(png),
                "--bootstrap",
                "50",
                "--split",
                "holdout",
            ],
            {},
        )
    assert code == 0
    lines = [orjson.loads(line) for line in scores_out.read_bytes().splitlines()]
    assert [line["index"] for line in lines] == list(range(12))
    assert all(line["tier"] in ("budget", "mid", "frontier") for line in lines)
    scores = [line["score"] for line in lines]
    assert len(set(scores)) == 12
    strong = [r.strong for r in held_out]
    weak = [r.weak for r in held_out]
    expected = independent_apgr(scores, strong, weak)
    apgr_line = next(line for line in out.getvalue().splitlines() if line.startswith("APGR"))
    assert float(apgr_line.split()[1]) == pytest.approx(expected, abs=5e-4)
    assert "[" in apgr_line  # a bootstrap interval is printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_returns_router_random_and_oracle() -> None:
    strong = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    weak = np.array([0.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    scores = np.array([0.9, 0.2, 0.5, 0.8, 0.1, 0.3])
    table = evaluate.report(scores, strong, weak, out=io.StringIO(), price_ratio=0.1, bootstrap=0, random_seeds=5)
    assert table["router"]["apgr"] == pytest.approx(independent_apgr(list(scores), list(strong), list(weak)))
    assert table["oracle"]["apgr"] >= table["router"]["apgr"]
    assert "ci_lo" not in table
