"""Judges: decide whether a cheaper tier's answer agrees with the frontier's (exact, similarity, or a model).

Pure except `ModelJudge`, which asks a judge model through a caller it is given (the gateway's providers).
Judges see answer text only to compare it; they never log it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from fastroute.catalogue import ModelEntry
from fastroute.env_values import SettingsError


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's finding: do the answers agree, how closely (0..1), by which judge, at what cost."""

    agree: bool
    score: float
    judge: str
    cost_usd: float = 0.0


class Judge(Protocol):
    name: str

    def reserve_usd(self, prompt_chars: int, answer_chars: int) -> float:
        """The most one judgement may cost (0 for local judges): reserved from the shadow budget first."""
        ...

    async def judge(self, prompt: str, candidate: str, reference: str, *, structured: bool) -> Verdict: ...


_TOKEN = re.compile(r"[0-9a-z]+")
_FINAL = (
    re.compile(r"####\s*([^\n]+)"),
    re.compile(r"\\boxed\{([^{}]+)\}"),
    re.compile(r"final answer\s*(?:is|:)?\s*[:=]?\s*([^\n]+)", re.IGNORECASE),
    re.compile(r"^\s*answer\s*[:=]\s*([^\n]+)", re.IGNORECASE | re.MULTILINE),
)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric words: what the similarity judge compares."""
    return _TOKEN.findall(text.lower())


def token_f1(candidate: str, reference: str) -> float:
    """Token-overlap F1 (as in SQuAD): 1.0 for the same words, 0.0 for none shared; 1.0 when both are empty."""
    a, b = tokens(candidate), tokens(reference)
    if not a or not b:
        return 1.0 if a == b else 0.0
    common = sum((Counter(a) & Counter(b)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def final_answer(text: str) -> str | None:
    """The answer a reply commits to (`#### 42`, `\\boxed{42}`, `Final answer: 42`), normalised; else None."""
    for pattern in _FINAL:
        found = pattern.findall(text)
        if found:
            value = str(found[-1]).strip().strip(".").replace(",", "").replace("$", "").strip().lower()
            if _NUMBER.match(value):
                value = f"{float(value):g}"
            return value
    return None


_LAST_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str) -> str | None:
    """The last number in a reply, normalised (how GSM8K-style answers without a marker are scored)."""
    found = _LAST_NUMBER.findall(text)
    if not found:
        return None
    value = found[-1].replace(",", "")
    try:
        return f"{float(value):g}"
    except ValueError:
        return None


def committed_answers(candidate: str, reference: str) -> tuple[str | None, str | None]:
    """Both replies' final answers; when only one marks its answer, the other's last number stands in."""
    a, b = final_answer(candidate), final_answer(reference)
    if a is None and b is not None and _NUMBER.match(b):
        a = last_number(candidate)
    elif b is None and a is not None and _NUMBER.match(a):
        b = last_number(reference)
    return a, b


def parse_json(text: str) -> Any:
    """The JSON value a reply holds (also inside a ```json fence); `...` (Ellipsis) when it holds none."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`")
        body = (body[4:] if body.lower().startswith("json") else body).strip()
    if not body or body[0] not in "[{":
        return ...
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return ...


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


class ExactJudge:
    """Structured answers: equal JSON values, equal final answers, or equal normalised text."""

    name = "exact"

    def reserve_usd(self, prompt_chars: int, answer_chars: int) -> float:
        return 0.0

    async def judge(self, prompt: str, candidate: str, reference: str, *, structured: bool) -> Verdict:
        return self.compare(candidate, reference)

    def compare(self, candidate: str, reference: str) -> Verdict:
        a, b = parse_json(candidate), parse_json(reference)
        if a is not ... and b is not ...:
            same = a == b
        else:
            fa, fb = committed_answers(candidate, reference)
            same = fa == fb if fa is not None and fb is not None else _normalised(candidate) == _normalised(reference)
        return Verdict(agree=same, score=1.0 if same else 0.0, judge=self.name)


class SimilarityJudge:
    """Free text: token-overlap F1 at or above `threshold` agrees. Cheap, crude, and biased to agree on
    near-identical wording; use a judge model where answers may be right in different words."""

    name = "similarity"

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def reserve_usd(self, prompt_chars: int, answer_chars: int) -> float:
        return 0.0

    async def judge(self, prompt: str, candidate: str, reference: str, *, structured: bool) -> Verdict:
        score = token_f1(candidate, reference)
        return Verdict(agree=score >= self.threshold, score=score, judge=self.name)


class AutoJudge:
    """Exact match where the answer is structured (JSON mode, tools, JSON bodies, final-answer markers),
    token similarity otherwise."""

    name = "auto"

    def __init__(self, threshold: float) -> None:
        self._exact = ExactJudge()
        self._similar = SimilarityJudge(threshold)

    def reserve_usd(self, prompt_chars: int, answer_chars: int) -> float:
        return 0.0

    async def judge(self, prompt: str, candidate: str, reference: str, *, structured: bool) -> Verdict:
        both_json = parse_json(candidate) is not ... and parse_json(reference) is not ...
        fa, fb = committed_answers(candidate, reference)
        both_final = fa is not None and fb is not None
        if structured or both_json or both_final:
            return self._exact.compare(candidate, reference)
        return await self._similar.judge(prompt, candidate, reference, structured=structured)


# (judge model, messages, max_tokens) -> (reply text, cost in USD)
JudgeCall = Callable[[ModelEntry, list[dict[str, Any]], int], Awaitable[tuple[str, float]]]

JUDGE_PROMPT = (
    "You grade whether answer B is as correct and complete as reference answer A for the question. "
    "Reply with exactly one word: AGREE or DISAGREE.\n\nQuestion:\n{prompt}\n\nAnswer A (reference):\n"
    "{reference}\n\nAnswer B:\n{candidate}"
)
# Judge inputs are clipped so one judgement's cost is bounded whatever the answers' length.
JUDGE_CLIP_CHARS = 6000


class ModelJudge:
    """Asks a catalogue model (through the gateway's providers) whether the answers agree."""

    def __init__(self, model: ModelEntry, call: JudgeCall) -> None:
        self.model = model
        self._call = call
        self.name = f"model:{model.name}"

    def reserve_usd(self, prompt_chars: int, answer_chars: int) -> float:
        chars = len(JUDGE_PROMPT) + min(prompt_chars, JUDGE_CLIP_CHARS) + 2 * min(answer_chars, JUDGE_CLIP_CHARS)
        # about 4 characters a token; doubled so a tokenizer that splits finer still fits the reservation
        return self.model.cost(chars // 2 + 16, 4)

    async def judge(self, prompt: str, candidate: str, reference: str, *, structured: bool) -> Verdict:
        text = JUDGE_PROMPT.format(
            prompt=prompt[:JUDGE_CLIP_CHARS],
            reference=reference[:JUDGE_CLIP_CHARS],
            candidate=candidate[:JUDGE_CLIP_CHARS],
        )
        reply, cost = await self._call(self.model, [{"role": "user", "content": text}], 4)
        words = tokens(reply)
        agree = bool(words) and words[0] in ("agree", "yes", "same")
        return Verdict(agree=agree, score=1.0 if agree else 0.0, judge=self.name, cost_usd=cost)


def build_judge(spec: str, threshold: float, models: dict[str, ModelEntry], call: JudgeCall) -> Judge:
    """The judge named by `FASTROUTE_SHADOW_JUDGE`; `model:<name>` must name a catalogue model."""
    if spec == "exact":
        return ExactJudge()
    if spec == "similarity":
        return SimilarityJudge(threshold)
    if spec.startswith("model:"):
        name = spec.removeprefix("model:")
        if name not in models:
            raise SettingsError(f"FASTROUTE_SHADOW_JUDGE={spec!r}: no catalogue model named {name!r}")
        return ModelJudge(models[name], call)
    return AutoJudge(threshold)
