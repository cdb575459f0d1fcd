"""Labelled routing data: reads strong/weak outcome JSONL and turns rows into serving-path features.

Rows follow the schema of the team's routing data: `prompt` (one user message) or `turns` (user messages of
one conversation), numeric `strong` and `weak` outcomes, optional `split`, `subject`/`category`. Features come
from `PromptAnalyzer.analyze(conversation_text(messages))`, exactly what the gateway computes per request,
so training and serving cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from fastroute.errors import InvalidRequest
from fastroute.native import PromptAnalyzer
from fastroute.prompt import conversation_text


class DatasetError(InvalidRequest):
    """A labelled JSONL file is unreadable or a row lacks a field."""

    code = "invalid_dataset"


@dataclass(frozen=True, slots=True)
class LabelledRow:
    text: str
    strong: float
    weak: float
    split: str
    group: str
    source: str


def row_messages(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat messages a labelled row stands for (each turn is a user message)."""
    if "turns" in row:
        return [{"role": "user", "content": str(t)} for t in row["turns"]]
    if "prompt" in row:
        return [{"role": "user", "content": str(row["prompt"])}]
    if "messages" in row:
        return list(row["messages"])
    raise DatasetError("row has none of `prompt`, `turns`, `messages`")


def read_rows(path: Path) -> list[LabelledRow]:
    """Reads one JSONL file. `group` is the subject/category (else the file name) for grouped folds."""
    rows: list[LabelledRow] = []
    source = path.stem
    try:
        lines = path.read_bytes().splitlines()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from e
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
            text = conversation_text(row_messages(raw))
            strong, weak = float(raw["strong"]), float(raw["weak"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, DatasetError) as e:
            raise DatasetError(f"{path}:{number}: {e}") from e
        group = str(raw.get("subject") or raw.get("category") or "")
        rows.append(LabelledRow(text, strong, weak, str(raw.get("split", "train")), group, source))
    return rows


def read_many(paths: Iterable[Path]) -> list[LabelledRow]:
    return [row for path in paths for row in read_rows(path)]


def feature_matrix(rows: Sequence[LabelledRow], analyzer: PromptAnalyzer) -> NDArray[np.float32]:
    """One serving-path feature vector per row, shape (len(rows), FEATURE_DIM)."""
    return np.stack([np.asarray(analyzer.analyze(r.text).features, dtype=np.float32) for r in rows])


def outcomes(rows: Sequence[LabelledRow]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return (np.array([r.strong for r in rows], dtype=np.float64), np.array([r.weak for r in rows], dtype=np.float64))
