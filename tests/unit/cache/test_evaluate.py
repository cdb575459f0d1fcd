"""`fastroute cache-eval`: replays labelled queries and scores hits, false hits and wrong entries."""

from __future__ import annotations

import json
from pathlib import Path

from fastroute.cache.evaluate import main


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cache_eval_scores_hits_false_hits_and_wrong_entries(tmp_path: Path) -> None:
    cache = write_jsonl(
        tmp_path / "cache.jsonl",
        [
            {"id": "pw", "text": "How do I reset my password?"},
            {"id": "math", "text": "What is 12 times 7?"},
        ],
    )
    queries = write_jsonl(
        tmp_path / "queries.jsonl",
        [
            {"text": "How can I reset my password?", "label": "should_hit", "target_id": "pw", "category": "para"},
            {"text": "what is 12 times 7", "label": "should_hit", "target_id": "math", "category": "rewrite"},
            {"text": "How can I reset my password?", "label": "should_hit", "target_id": "math", "category": "bad"},
            {"text": "What is 12 times 8?", "label": "should_miss", "target_id": None, "category": "numbers"},
            {"text": "Bake a cake for me", "label": "should_miss", "target_id": None, "category": "novel"},
        ],
    )
    out = tmp_path / "result.json"
    assert main(["--cache", str(cache), "--queries", str(queries), "--out", str(out)], {}) == 0
    report = json.loads(out.read_text())
    cats = report["by_category"]
    assert cats["para"]["hit_rate"] == 1.0 and cats["rewrite"]["hit_rate"] == 1.0
    assert cats["bad"]["hit_rate"] == 0.0 and cats["bad"]["wrong_entry_rate"] == 1.0
    assert cats["numbers"]["false_hit_rate"] == 0.0 and report["overall"]["false_hit_rate"] == 0.0
    assert report["overall"]["hit_rate"] == round(2 / 3, 4)
    assert [p["threshold"] for p in report["curve"]] == sorted(p["threshold"] for p in report["curve"])
    assert main(["--cache", str(tmp_path / "missing.jsonl"), "--queries", str(queries)], {}) == 1
