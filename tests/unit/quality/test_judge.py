"""Judges: exact, similarity, auto selection, and a judge model through an injected caller."""

from __future__ import annotations

from typing import Any

import pytest

from fastroute.catalogue import ModelEntry
from fastroute.env_values import SettingsError
from fastroute.quality.judge import (
    AutoJudge,
    ExactJudge,
    ModelJudge,
    SimilarityJudge,
    build_judge,
    committed_answers,
    final_answer,
    last_number,
    parse_json,
    token_f1,
)

JUDGE_MODEL = ModelEntry("judge", "p", "judge-1", "budget", 1e-6, 2e-6)


def test_token_f1() -> None:
    assert token_f1("Paris is the capital", "the capital is Paris") == 1.0
    assert token_f1("yes", "no") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "x") == 0.0
    assert token_f1("a b c d", "a b x y") == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so 3*4=12\n#### 12", "12"),
        ("The result is \\boxed{3.50}", "3.5"),
        ("Final answer: $1,200.", "1200"),
        ("Answer: Paris\nbecause...", "paris"),
        ("no commitment here", None),
    ],
)
def test_final_answer(text: str, expected: str | None) -> None:
    assert final_answer(text) == expected


def test_parse_json() -> None:
    assert parse_json('{"a": 1}') == {"a": 1}
    assert parse_json("```json\n[1, 2]\n```") == [1, 2]
    assert parse_json("not json") is ...
    assert parse_json("{broken") is ...


async def test_exact_judge() -> None:
    judge = ExactJudge()
    assert (await judge.judge("q", '{"a": 1, "b": 2}', '{"b": 2, "a": 1}', structured=True)).agree
    assert not (await judge.judge("q", '{"a": 1}', '{"a": 2}', structured=True)).agree
    assert (await judge.judge("q", "work...\n#### 42", "other work\n#### 42.0", structured=False)).agree
    assert (await judge.judge("q", " Hello  World ", "hello world", structured=False)).agree
    assert not (await judge.judge("q", "Hello", "Goodbye", structured=False)).agree


async def test_similarity_judge_threshold() -> None:
    judge = SimilarityJudge(0.6)
    v = await judge.judge("q", "a b c d", "a b x y", structured=False)
    assert not v.agree and v.score == pytest.approx(0.5)
    assert (await SimilarityJudge(0.5).judge("q", "a b c d", "a b x y", structured=False)).agree


async def test_auto_judge_uses_exact_for_structured_answers() -> None:
    judge = AutoJudge(0.3)
    # similar words, different final answers: exact wins
    v = await judge.judge("q", "the total is\n#### 41", "the total is\n#### 42", structured=False)
    assert not v.agree and v.judge == "exact"
    # free text falls back to similarity
    v = await judge.judge("q", "paris is the capital of france", "the capital of france is paris", structured=False)
    assert v.agree and v.judge == "similarity"
    # structured requests compare exactly even without markers
    v = await judge.judge("q", "paris is the capital", "the capital is paris", structured=True)
    assert not v.agree


async def test_model_judge_asks_and_charges() -> None:
    seen: list[tuple[str, int]] = []

    async def call(model: ModelEntry, messages: list[dict[str, Any]], max_tokens: int) -> tuple[str, float]:
        seen.append((messages[0]["content"], max_tokens))
        return ("AGREE." if "forty-two" in messages[0]["content"] else "Disagree"), 0.001

    judge = ModelJudge(JUDGE_MODEL, call)
    v = await judge.judge("what is 6*7", "forty-two", "42", structured=False)
    assert v.agree and v.cost_usd == 0.001 and v.judge == "model:judge"
    assert not (await judge.judge("what is 6*7", "41", "42", structured=False)).agree
    assert seen[0][1] == 4
    assert judge.reserve_usd(100, 100) > 0
    # inputs are clipped, so the reservation is bounded however long the answers are
    assert judge.reserve_usd(10**7, 10**7) == judge.reserve_usd(10**5, 10**5)


def test_build_judge() -> None:
    async def call(model: ModelEntry, messages: list[dict[str, Any]], max_tokens: int) -> tuple[str, float]:
        return "", 0.0

    assert isinstance(build_judge("auto", 0.5, {}, call), AutoJudge)
    assert isinstance(build_judge("exact", 0.5, {}, call), ExactJudge)
    assert isinstance(build_judge("similarity", 0.5, {}, call), SimilarityJudge)
    assert isinstance(build_judge("model:judge", 0.5, {"judge": JUDGE_MODEL}, call), ModelJudge)
    with pytest.raises(SettingsError, match="FASTROUTE_SHADOW_JUDGE"):
        build_judge("model:nope", 0.5, {"judge": JUDGE_MODEL}, call)


def test_a_marked_answer_is_compared_with_the_other_replys_last_number() -> None:
    assert last_number("costs $1,200.50 in total, or 3 payments") == "3"
    assert last_number("no digits") is None
    assert committed_answers("so she pays 4 * 15 = 60 dollars.", "work\n#### 60") == ("60", "60")
    assert committed_answers("#### 7", "it is 8 apples") == ("7", "8")
    assert committed_answers("Answer: Paris", "it is Lyon") == ("paris", None)  # words: no stand-in
    assert committed_answers("a", "b") == (None, None)
