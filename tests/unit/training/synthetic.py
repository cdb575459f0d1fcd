"""A small synthetic labelled set whose strong-model gain depends on prompt length and math cues."""

from __future__ import annotations

import numpy as np
import orjson

from fastroute.training.dataset import LabelledRow

WORDS = ["apple", "river", "count", "blue", "engine", "theory", "market", "song", "cloud", "stone"]


def synthetic_rows(n: int = 120, seed: int = 0) -> list[LabelledRow]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        length = int(rng.integers(3, 60))
        mathy = bool(rng.random() < 0.4)
        text = " ".join(rng.choice(WORDS, size=length))
        if mathy:
            text += f" calculate the total of {rng.integers(1, 99)} + {rng.integers(1, 99)} per day"
        p_gain = 0.1 + 0.5 * (length / 60) + (0.3 if mathy else 0.0)
        weak = float(rng.random() > p_gain)
        strong = 1.0 if weak == 0.0 else float(rng.random() < 0.9)
        rows.append(LabelledRow(f"<user> {text}", strong, weak, "train", f"g{i % 12}", "synthetic"))
    return rows


def write_jsonl(path, rows: list[LabelledRow], split: str = "train") -> None:  # type: ignore[no-untyped-def]
    lines = [
        orjson.dumps({"prompt": r.text.removeprefix("<user> "), "strong": r.strong, "weak": r.weak, "split": split})
        for r in rows
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
