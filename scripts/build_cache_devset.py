"""Builds the semantic-cache development and held-out sets for `fastroute cache-eval` (run offline, output committed).

Sources (team data, read only here): GPTCache mock paraphrase pairs and the RouteLLM routing prompts.
Each set is a `cache.jsonl` (`id`, `text`) and a `queries.jsonl` (`text`, `label`, `target_id`, `category`):

  should_hit:  paraphrase (GPTCache `similar` -> its `origin`), rewrite (case, punctuation, politeness,
               spacing changes of cached routing and GPTCache prompts)
  should_miss: numbers (one number changed), negation ("not" inserted), options (multiple-choice options
               shuffled), operands (two numbers swapped, or "from X to Y" reversed), novel (uncached routing
               prompts, many sharing a template with cached ones). A paraphrase whose origin is withheld is
               not used as should_miss: the GPTCache pairs hold near-duplicate origins that may rightly answer it.

Items are split by source split (routing `train` -> dev, `holdout` -> held-out) and by a hash of the
pair index for GPTCache (70 / 30), so thresholds tuned on dev are checked on prompts never looked at.

Usage: python scripts/build_cache_devset.py --data ../shared/data --out benchmarks/data
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

NUM = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]\d)")
AUX = re.compile(r"\b(is|are|was|were|does|do|did|can|will|should|would|could|has|have)\b", re.I)
FROM_TO = re.compile(r"\bfrom (\w+(?: \w+)?) to (\w+(?: \w+)?)\b")
OPTION_LINE = re.compile(r"(?m)^([A-D])\. (.*)$")


def stable_frac(s: str) -> float:
    return int(hashlib.sha1(s.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def rewrite(text: str, rng: random.Random) -> str:
    """A trivial rewrite that must not change the answer."""
    ops = [
        lambda t: t.lower(),
        lambda t: t.rstrip("?.! ") if not t.rstrip().endswith("Answer:") else t,
        lambda t: "Please answer this: " + t,
        lambda t: "Can you help me with this? " + t,
        lambda t: re.sub(r" ", "  ", t, count=3),
        lambda t: t.replace("What is", "What's").replace("what is", "what's"),
        lambda t: "Hi! " + t + " Thanks.",
    ]
    out = rng.choice(ops)(text)
    return out if out != text else "Please answer: " + text


def change_number(text: str, rng: random.Random) -> str | None:
    nums = list(NUM.finditer(text))
    if not nums:
        return None
    m = rng.choice(nums)
    val = m.group(0)
    new = str(int(float(val)) + rng.choice([1, 2, 3, 5, 10])) if "." not in val else str(float(val) + 0.5)
    return text[: m.start()] + new + text[m.end() :]


def swap_operands(text: str) -> str | None:
    ft = FROM_TO.search(text)
    if ft and ft.group(1) != ft.group(2):
        return text[: ft.start()] + f"from {ft.group(2)} to {ft.group(1)}" + text[ft.end() :]
    nums = list(NUM.finditer(text))
    for i in range(len(nums)):
        for j in range(i + 1, len(nums)):
            a, b = nums[i], nums[j]
            if a.group(0) != b.group(0):
                return text[: a.start()] + b.group(0) + text[a.end() : b.start()] + a.group(0) + text[b.end() :]
    return None


def negate(text: str) -> str | None:
    stem = text.split("\nA.")[0]
    m = AUX.search(stem)
    if not m:
        return None
    return text[: m.end()] + " not" + text[m.end() :]


def shuffle_options(text: str, rng: random.Random) -> str | None:
    opts = OPTION_LINE.findall(text)
    if len(opts) < 3 or len({o[1] for o in opts}) < len(opts):
        return None
    bodies = [o[1] for o in opts]
    for _ in range(10):
        perm = bodies[:]
        rng.shuffle(perm)
        if perm != bodies:
            break
    else:
        return None
    it = iter(perm)
    return OPTION_LINE.sub(lambda m: f"{m.group(1)}. {next(it)}", text)


def build(data: Path, split: str, rng: random.Random, sizes: dict[str, int]) -> tuple[list[Any], list[Any]]:
    cache: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []

    def q(text: str, label: str, target: str | None, category: str) -> None:
        queries.append({"text": text, "label": label, "target_id": target, "category": category})

    pairs = json.loads((data / "cache/gptcache_mock_pairs.json").read_text())
    mine = [(i, p) for i, p in enumerate(pairs) if (stable_frac(f"pair{i}") < 0.7) == (split == "dev")]
    rng.shuffle(mine)
    n_absent = sizes["absent"]
    for k, (i, p) in enumerate(mine):
        if k < n_absent:
            continue  # origin withheld (the GPTCache data holds near-duplicate origins, so no "absent" label)
        cid = f"gpt{i}"
        cache.append({"id": cid, "text": p["origin"]})
        q(p["similar"], "should_hit", cid, "paraphrase")
        if k % 4 == 0:
            q(rewrite(p["origin"], rng), "should_hit", cid, "rewrite")

    routing_split = "train" if split == "dev" else "holdout"
    gsm = [json.loads(line) for line in (data / "routing/gsm8k.jsonl").open()]
    mmlu = [json.loads(line) for line in (data / "routing/mmlu.jsonl").open()]
    gsm = [r["prompt"] for r in gsm if r["split"] == routing_split]
    mmlu = [r["prompt"] for r in mmlu if r["split"] == routing_split]
    rng.shuffle(gsm)
    rng.shuffle(mmlu)
    cached_gsm, novel_gsm = gsm[: sizes["gsm"]], gsm[sizes["gsm"] : sizes["gsm"] + sizes["novel"] // 2]
    cached_mmlu = mmlu[: sizes["mmlu"]]
    novel_mmlu = mmlu[sizes["mmlu"] : sizes["mmlu"] + sizes["novel"] // 2]
    for j, text in enumerate(cached_gsm):
        cid = f"gsm{j}"
        cache.append({"id": cid, "text": text})
        if j % 3 == 0:
            q(rewrite(text, rng), "should_hit", cid, "rewrite")
        if (t := change_number(text, rng)) is not None and j % 2 == 0:
            q(t, "should_miss", None, "numbers")
        if (t := swap_operands(text)) is not None and j % 2 == 1:
            q(t, "should_miss", None, "operands")
        if j % 3 == 1 and (t := negate(text)) is not None:
            q(t, "should_miss", None, "negation")
    for j, text in enumerate(cached_mmlu):
        cid = f"mmlu{j}"
        cache.append({"id": cid, "text": text})
        if j % 3 == 0:
            q(rewrite(text, rng), "should_hit", cid, "rewrite")
        if (t := shuffle_options(text, rng)) is not None and j % 2 == 0:
            q(t, "should_miss", None, "options")
        if j % 2 == 1 and (t := negate(text)) is not None:
            q(t, "should_miss", None, "negation")
        if j % 4 == 1 and (t := change_number(text, rng)) is not None:
            q(t, "should_miss", None, "numbers")
    for text in novel_gsm + novel_mmlu:
        q(text, "should_miss", None, "novel")
    return cache, queries


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    plans = {
        "cache_dev": ("dev", {"absent": 100, "gsm": 400, "mmlu": 400, "novel": 300}),
        "cache_holdout": ("holdout", {"absent": 60, "gsm": 200, "mmlu": 300, "novel": 200}),
    }
    for name, (split, sizes) in plans.items():
        cache, queries = build(args.data, split, random.Random(f"{name}-seed-1"), sizes)
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for fname, rows in (("cache.jsonl", cache), ("queries.jsonl", queries)):
            with (folder / fname).open("w") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        cats: dict[str, int] = {}
        for row in queries:
            cats[row["category"]] = cats.get(row["category"], 0) + 1
        print(f"{name}: {len(cache)} cached, {len(queries)} queries {cats}")


if __name__ == "__main__":
    main()
