"""`fastroute cache-eval`: replays labelled queries against cached prompts through the real cache code path.

Reads files named on the command line; prints a summary and optionally writes the full result as JSON.
Cache file (JSONL): `id`, `text`. Queries (JSONL): `text`, `label` (`should_hit` | `should_miss`),
`target_id` (the cached id whose answer may be served), optional `category`. A hit on another entry than
`target_id` counts as a false hit, never as a hit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastroute import _native
from fastroute.cache.keys import fingerprint_request
from fastroute.cache.semantic_cache import SemanticCache
from fastroute.cache.settings import CacheSettings
from fastroute.cache.types import CacheScope
from fastroute.embedding import EMBEDDING_DIM, load_embedder
from fastroute.env_values import env_path
from fastroute.settings import REPO_MODELS_DIR

__all__ = ["main"]

CURVE = tuple(round(0.70 + 0.01 * i, 2) for i in range(30))


@dataclass(frozen=True, slots=True)
class _Key:
    key: str
    embedding: None = None


@dataclass(slots=True)
class _Outcome:
    label: str
    category: str
    kind: str | None  # exact | semantic | None
    similarity: float
    correct: bool  # served the target entry


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _rates(outcomes: list[_Outcome], threshold: float) -> dict[str, Any]:
    def served(o: _Outcome) -> bool:
        return o.kind == "exact" or (o.kind == "semantic" and o.similarity >= threshold)

    hit = [o for o in outcomes if o.label == "should_hit"]
    miss = [o for o in outcomes if o.label == "should_miss"]
    good = sum(1 for o in hit if served(o) and o.correct)
    wrong = sum(1 for o in hit if served(o) and not o.correct)
    false_hits = sum(1 for o in miss if served(o))
    return {
        "should_hit": len(hit),
        "hit_rate": round(good / len(hit), 4) if hit else None,
        "wrong_entry_rate": round(wrong / len(hit), 4) if hit else None,
        "should_miss": len(miss),
        "false_hit_rate": round(false_hits / len(miss), 4) if miss else None,
    }


def evaluate(
    cache_rows: list[dict[str, Any]], queries: list[dict[str, Any]], settings: CacheSettings, models_dir: Path
) -> dict[str, Any]:
    """Loads `cache_rows`, replays `queries`, returns the report (see module docstring)."""
    embedder = load_embedder(models_dir)
    floor = min(CURVE[0], settings.similarity)
    cache = SemanticCache(
        replace(settings, similarity=floor, max_entries=max(settings.max_entries, len(cache_rows) + 1)),
        embedder.embed,
        EMBEDDING_DIM,
    )
    scope = CacheScope(tenant="eval")
    fingerprint = fingerprint_request({"model": "eval"})
    key_to_id: dict[str, str] = {}
    for row in cache_rows:
        text = str(row["text"])
        entry = cache.store(scope, _Key(_native.normalize_key(text)), fingerprint, text, {"id": row["id"]})
        if entry is not None:
            key_to_id[entry.key] = str(row["id"])
    outcomes: list[_Outcome] = []
    latencies: list[float] = []
    for row in queries:
        text = str(row["text"])
        t0 = time.perf_counter()
        hit = cache.lookup(scope, _Key(_native.normalize_key(text)), fingerprint, text)
        latencies.append(time.perf_counter() - t0)
        served_id = key_to_id.get(hit.entry_key) if hit is not None else None
        outcomes.append(
            _Outcome(
                label=str(row["label"]),
                category=str(row.get("category") or "all"),
                kind=hit.kind if hit is not None else None,
                similarity=hit.similarity if hit is not None else 0.0,
                correct=hit is not None and served_id == row.get("target_id"),
            )
        )
    by_cat: dict[str, list[_Outcome]] = defaultdict(list)
    for o in outcomes:
        by_cat[o.category].append(o)
    latencies.sort()
    n = len(latencies)
    return {
        "threshold": settings.similarity,
        "cached": len(cache_rows),
        "queries": len(queries),
        "overall": _rates(outcomes, settings.similarity),
        "by_category": {c: _rates(os_, settings.similarity) for c, os_ in sorted(by_cat.items())},
        "curve": [{"threshold": t, **_rates(outcomes, t)} for t in CURVE],
        "verifier_rejections": {k: v for k, v in sorted(cache.counters.items()) if k.startswith("verifier_")},
        "lookup_us": {
            "p50": round(latencies[n // 2] * 1e6, 1) if n else None,
            "p99": round(latencies[min(n - 1, int(n * 0.99))] * 1e6, 1) if n else None,
        },
    }


def main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    ap = argparse.ArgumentParser(prog="fastroute cache-eval", description=__doc__.split("\n", 1)[0])
    ap.add_argument("--cache", type=Path, required=True, help="cached prompts, JSONL with id, text")
    ap.add_argument("--queries", type=Path, required=True, help="labelled queries, JSONL")
    ap.add_argument("--out", type=Path, default=None, help="write the full result as JSON here")
    ap.add_argument("--threshold", type=float, default=None, help="override FASTROUTE_CACHE_SIMILARITY")
    args = ap.parse_args(list(argv))
    settings = CacheSettings.from_env(env)
    if args.threshold is not None:
        settings = replace(settings, similarity=args.threshold)
    models_dir = env_path(env, "FASTROUTE_MODELS_DIR", REPO_MODELS_DIR) or REPO_MODELS_DIR
    try:
        report = evaluate(_read_jsonl(args.cache), _read_jsonl(args.queries), settings, models_dir)
    except (OSError, ValueError, KeyError) as e:
        print(f"cache-eval: {e}", file=sys.stderr)
        return 1
    o = report["overall"]
    print(
        f"threshold {report['threshold']}: hit rate {o['hit_rate']} on {o['should_hit']} should_hit, "
        f"false-hit rate {o['false_hit_rate']} on {o['should_miss']} should_miss, "
        f"wrong-entry rate {o['wrong_entry_rate']}"
    )
    for cat, r in report["by_category"].items():
        rate = r["hit_rate"] if r["should_hit"] else r["false_hit_rate"]
        what = "hit rate" if r["should_hit"] else "false-hit rate"
        print(f"  {cat:<12} {what} {rate} (n={r['should_hit'] + r['should_miss']})")
    print(f"lookup p50 {report['lookup_us']['p50']} us, p99 {report['lookup_us']['p99']} us")
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2))
    return 0
