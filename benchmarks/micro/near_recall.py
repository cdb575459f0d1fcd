"""Does a bounded HNSW search (`VectorIndex.search_pairs(..., min_similarity=t)`) find what the plain one finds?

Run: `python benchmarks/micro/near_recall.py` (~2 minutes; needs `../shared/data/routing/`, skips without it).
A dense index of real prompts, as a busy cache holds: the `train` rows of the team's routing prompts (MMLU
and GSM8K: many share a template), the committed cache-evaluation entries, and synthetic sentences up to
100,000 entries, int8 with the cache's graph settings. Queries: the cache-evaluation queries and 4,000 train
prompts with one word dropped. For each bound t (the cache's similarity threshold) it counts, against exact
search, the true top-4 neighbours at or above t + 0.005 that each search found (the margin absorbs int8
rounding), and times both searches query by query in alternation (mean and median of each).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np
from synthetic_prompts import synthetic_prompts

from fastroute._native import VectorIndex
from fastroute.cache.keys import split_conversation
from fastroute.embedding import EMBEDDING_DIM, load_embedder

ROOT = Path(__file__).resolve().parents[2]
ROUTING = ROOT.parent / "shared" / "data" / "routing"
EVAL = ROOT / "benchmarks" / "data"
ENTRIES = 100_000
BOUNDS = (0.85, 0.90)
EF, K = 16, 4


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.open()]


def main() -> int:
    if not ROUTING.is_dir():
        print(f"skipped: {ROUTING} not found")
        return 0
    routing = [d for f in ("mmlu.jsonl", "gsm8k.jsonl") for d in _jsonl(ROUTING / f)]
    train = [str(d["prompt"]) for d in routing if d["split"] == "train"]  # holdout rows are for reporting only
    evaluation = [str(d["text"]) for s in ("cache_dev", "cache_holdout") for d in _jsonl(EVAL / s / "cache.jsonl")]
    texts = list(dict.fromkeys(train + evaluation))
    texts += synthetic_prompts(ENTRIES - len(texts), 1, ROOT / "models")
    rng = random.Random(3)

    def drop_word(text: str) -> str:
        words = text.split()
        if len(words) > 4:
            del words[rng.randrange(len(words))]
        return " ".join(words)

    queries = [str(d["text"]) for s in ("cache_dev", "cache_holdout") for d in _jsonl(EVAL / s / "queries.jsonl")]
    queries += [drop_word(t) for t in rng.sample(train, 4000)]
    embedder = load_embedder(ROOT / "models")
    x = embedder.embed_batch([split_conversation(t)[1] for t in texts])
    q = embedder.embed_batch([split_conversation(t)[1] for t in queries])
    index = VectorIndex(EMBEDDING_DIM, 16, 100, 2 * ENTRIES, int8=True)  # as SemanticCache builds it
    index.add(np.arange(len(texts), dtype=np.uint64), x)
    # Exact top K per query, in chunks (the whole similarity matrix would take ~3 GB).
    top = np.zeros((len(q), K), dtype=np.int64)
    top_sims = np.zeros((len(q), K), dtype=np.float32)
    for lo in range(0, len(q), 256):
        sims = q[lo : lo + 256] @ x.T
        part = np.argpartition(-sims, K, axis=1)[:, :K]
        top[lo : lo + 256], top_sims[lo : lo + 256] = part, np.take_along_axis(sims, part, axis=1)
    print(f"{len(train)} train prompts, {len(texts)} entries, {len(queries)} queries, ef {EF}, k {K}")
    clock = time.perf_counter_ns
    for bound in BOUNDS:
        found = {"plain": 0, "bounded": 0}
        spent: dict[str, list[int]] = {"plain": [], "bounded": []}
        wanted = 0
        for i, v in enumerate(q):
            want = {int(j) for j, sim in zip(top[i], top_sims[i], strict=True) if sim >= bound + 0.005}
            wanted += len(want)
            for name in ("plain", "bounded") if i % 2 else ("bounded", "plain"):
                t = clock()
                got = index.search_pairs(v, K, EF, bound if name == "bounded" else None)
                spent[name].append(clock() - t)
                found[name] += len(want & {int(j) for j, s in got if s >= bound})
        mean = {name: float(np.mean(ns)) / 1e3 for name, ns in spent.items()}
        median = {name: float(np.median(ns)) / 1e3 for name, ns in spent.items()}
        print(
            f"bound {bound}: of {wanted} true neighbours, plain found {found['plain']}, bounded "
            f"{found['bounded']}; search plain mean {mean['plain']:.1f} / median {median['plain']:.1f} us, "
            f"bounded {mean['bounded']:.1f} / {median['bounded']:.1f} us (ratio of medians "
            f"{median['bounded'] / median['plain']:.2f}; a mean moves with any stall of the machine)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
