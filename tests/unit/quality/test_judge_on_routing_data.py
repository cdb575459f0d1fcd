"""The default judge on real answers: GSM8K strong/weak responses from the team's routing data.

Skips cleanly without the data (it is never needed at run time). Ground truth: the weak answer is as good as
the strong one (`weak >= strong`); the judge sees only the two texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from fastroute.quality.judge import AutoJudge

DATA = Path("/work/shared/data/routing/gsm8k.jsonl")


def read_rows() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in DATA.read_bytes().splitlines() if line.strip()]


@pytest.mark.skipif(not DATA.is_file(), reason="team routing data not available")
async def test_auto_judge_agrees_with_gsm8k_outcomes() -> None:
    rows = read_rows()
    judge = AutoJudge(0.5)
    agree_good = agree_bad = disagree_bad = 0
    for row in rows:
        verdict = await judge.judge(row["prompt"], row["weak_response"], row["strong_response"], structured=False)
        good = row["weak"] >= row["strong"]
        agree_good += verdict.agree and good
        agree_bad += verdict.agree and not good
        disagree_bad += (not verdict.agree) and not good
    bad = agree_bad + disagree_bad
    precision = agree_good / (agree_good + agree_bad)  # when it says "agrees", the cheap answer was fine
    caught = disagree_bad / bad  # share of worse cheap answers it flags
    # measured on all 1,307 rows: precision 0.955, caught 0.903
    assert precision >= 0.93 and caught >= 0.85, (precision, caught, len(rows))
