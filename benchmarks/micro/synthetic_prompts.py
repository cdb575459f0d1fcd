"""Filler entries for the cache benchmarks: sentences of 6-24 whole words drawn from the embedding's WordPiece
vocabulary (ASCII words of three letters or more), each ending in "?". Seeded, so every run fills its index
alike; distinct from real prompts, so the committed evaluation entries stand out among them."""

from __future__ import annotations

import json
import random
from pathlib import Path


def synthetic_prompts(n: int, seed: int, models_dir: Path) -> list[str]:
    """`n` sentences from the vocabulary in `models_dir/embedding/tokenizer.json`."""
    vocab = json.loads((models_dir / "embedding" / "tokenizer.json").read_text())["model"]["vocab"]
    words = [w for w in vocab if w.isalpha() and w.isascii() and len(w) > 2 and not w.startswith("##")]
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=rng.randint(6, 24))) + "?" for _ in range(n)]
