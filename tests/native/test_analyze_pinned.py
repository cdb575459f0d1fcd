"""`Analyzer.analyze` outputs pinned bit for bit: token counts, feature vectors, embeddings and exact keys.

The fixture (tests/native/data/analyze_pinned.json.gz) holds a varied corpus (bench-style prompts of 100 to
16,000 tokens, multi-turn conversations, MCQ, code, unicode, emoji, whitespace runs, texts longer than the
feature window cut inside multi-byte chars, random byte soup) and what the analyzer returned for each text
when the fixture was written (features as float32 bytes, embeddings as SHA-256 of their float32 bytes).
Any speed work on the native analyzer must leave every value equal: the shipped router was trained on these
features, the semantic cache's quality rests on these embeddings, and cache keys must not move.

Regenerate only for a deliberate change of meaning (and bump FEATURE_VERSION / retrain if features move):
`python tests/native/test_analyze_pinned.py --write`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fastroute.native import PromptAnalyzer

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
FIXTURE = Path(__file__).with_name("data") / "analyze_pinned.json.gz"
HAS_EMBEDDING = (MODELS / "embedding" / "table.q8").is_file()

_WORDS = (
    "the a of to and in is that for it as with was on be by this are or from at an which have not but what all "
    "were when we there can more if will each about how up out them then she many some so these would other into "
    "calculate probability explain compare write story step function return array market profit hours Python "
    "JSON HTTP API Einstein Paris October Monday HowMany isn't they're we'll I'd CamelCaseWord snake_case_name "
    "following statement true false which much long antidisestablishmentarianism supercalifragilistic"
).split()
_ODD = [
    "Café", "naïve", "ÉCOLE", "Ångström", "東京は日本の首都です。", "中文", "한국어", "Ελληνικά", "кириллица",
    "العربية", "हिन्दी", "🤗", "🚀🚀", "👍🏽", "©®™", "—", "“quoted”", "\u2018single\u2019", "…", "¿¡", "ﬁ", "½",
    "²", "\uff28\uff25\uff2c\uff2c\uff2f", "\u200b", "\ufeff", "\ufffd", "\u00a0", "\u3000", "\u0301", "\u017f",
    "K", "İ", "ß", "$5", "12.5%",
    "3.14159", "1,000,000", "x**2", "{a: [1, 2]}", "f(x) = y;", "a|b", "```", "```py", "<<user> forged", "\t", "\r\n",
    "\x0b", "\x0c", "\x00", "\x7f", "   ", "\n\n\n", "  \n  ", "e.g.", "?!", "...", "A.", "(B)", "C)",
]


def _xorshift(seed: int) -> Any:
    state = seed or 1

    def next_value() -> int:
        nonlocal state
        state ^= (state << 13) & 0xFFFFFFFFFFFFFFFF
        state ^= state >> 7
        state ^= (state << 17) & 0xFFFFFFFFFFFFFFFF
        return state

    return next_value


def _prose(rng: Any, words: int, odd_share: int) -> str:
    out: list[str] = []
    for _ in range(words):
        r = rng() % 100
        if r < 4:
            out.append(str(rng() % 100_000))
        elif r < 5:
            out.append("\ndef area(r):\n    return 3.14159 * r ** 2  # circle\n")
        elif r < 12:
            out.append(_WORDS[rng() % len(_WORDS)] + ".,?:!;"[rng() % 6])
        elif r < 12 + odd_share:
            out.append(_ODD[rng() % len(_ODD)])
        else:
            out.append(_WORDS[rng() % len(_WORDS)])
    return " ".join(out)


def corpus() -> list[str]:
    """The varied corpus the fixture pins (built deterministically; the fixture stores the texts too)."""
    from fastroute.prompt import conversation_text

    rng = _xorshift(0x5EED_F00D)
    texts: list[str] = ["", " ", "a", "<user> ", "<user> Hi", "\n", "<<", "<a>\n<b>", "What is 2+2?"]
    texts += _ODD
    system = "You are a careful assistant. Answer concisely and show your reasoning when asked."
    for words in (70, 350, 1_400, 11_000):
        for odd in (0, 3):
            user = _prose(rng, words, odd)
            texts.append(conversation_text([{"role": "system", "content": system}, {"role": "user", "content": user}]))
    mcq = "Which of the following is true?\nA. 4 apples\nB) five\n(C) 6\nD. none of the above\nAnswer:"
    texts.append(conversation_text([{"role": "user", "content": mcq}]))
    texts.append(conversation_text([{"role": "user", "content": "Statement 1 | x is y. Statement 2 | y is z."}]))
    for n in range(40):
        turns: list[dict[str, Any]] = [{"role": "system", "content": _prose(rng, rng() % 40, 5)}]
        for t in range(rng() % 5 + 1):
            turns.append({"role": "user", "content": _prose(rng, rng() % 120 + 1, 10)})
            if t % 2 == 0:
                turns.append({"role": "assistant", "content": _prose(rng, rng() % 80, 5), "name": f"bot{n}"})
        texts.append(conversation_text(turns, tools=n % 7 == 0, json_mode=n % 5 == 0))
    # Longer than the 8 KiB feature window, with multi-byte chars around both window cuts.
    for unit in ("é", "日本", "🎉 a", "Ab1 ", "x\u0301"):
        texts.append("<user> " + unit * (9_000 // len(unit.encode())))
    texts.append("<user> " + "All work and no play makes Jack a dull boy. " * 2_000)
    alphabet = [
        *" abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?'\"()[]{}<>/\\-_=+*&^%$#@~`\n\t\r",
        "é", "ü", "ñ", "Å", "中", "日", "😀", "\u0301", "\u0000", "\u3000", "\u017f", "<user> ", "\n<user> ", "\n<<",
    ]
    for _ in range(300):
        n = rng() % (3_000 if rng() % 10 == 0 else 200)
        texts.append("".join(alphabet[rng() % len(alphabet)] for _ in range(n)))
    for _ in range(100):
        raw = bytes(rng() % 256 for _ in range(rng() % 300))
        texts.append(raw.decode("utf-8", "replace"))
    return texts


def _outputs(text: str, analyzers: dict[str, PromptAnalyzer]) -> dict[str, Any]:
    base = analyzers["cl100k_base"].analyze(text)
    row: dict[str, Any] = {
        "text": text,
        "tokens_cl100k": base.tokens,
        "tokens_o200k": analyzers["o200k_base"].analyze(text).tokens,
        "key": base.key,
        "features": np.asarray(base.features, dtype="<f4").tobytes().hex(),
    }
    if "embedding" in analyzers:
        emb = analyzers["embedding"].analyze(text)
        assert emb.embedding is not None
        row["embedding_sha256"] = hashlib.sha256(np.asarray(emb.embedding, dtype="<f4").tobytes()).hexdigest()
        row["embedding_key_tokens"] = [emb.key == base.key, emb.tokens == base.tokens]
    return row


def _analyzers() -> dict[str, PromptAnalyzer]:
    found = {"cl100k_base": PromptAnalyzer("cl100k_base"), "o200k_base": PromptAnalyzer("o200k_base")}
    if HAS_EMBEDDING:
        found["embedding"] = PromptAnalyzer.from_models_dir(MODELS)
    return found


@pytest.fixture(scope="module")
def pinned() -> list[dict[str, Any]]:
    if not FIXTURE.is_file():
        pytest.skip("pinned analyzer outputs not present")
    rows: list[dict[str, Any]] = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    return rows


def test_fixture_covers_a_varied_corpus(pinned: list[dict[str, Any]]) -> None:
    assert len(pinned) >= 500
    assert max(r["tokens_cl100k"] for r in pinned) > 15_000
    assert any(not r["text"].isascii() for r in pinned)


def test_outputs_equal_the_pinned_outputs(pinned: list[dict[str, Any]]) -> None:
    analyzers = _analyzers()
    mismatches = []
    for i, want in enumerate(pinned):
        got = _outputs(want["text"], analyzers)
        for field in ("tokens_cl100k", "tokens_o200k", "key", "features"):
            if got[field] != want[field]:
                mismatches.append((i, field, want["text"][:60]))
        if "embedding_sha256" in want and "embedding_sha256" in got:
            if got["embedding_sha256"] != want["embedding_sha256"]:
                mismatches.append((i, "embedding", want["text"][:60]))
            assert got["embedding_key_tokens"] == [True, True]
    assert not mismatches, f"{len(mismatches)} differences, first: {mismatches[:5]}"


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/native/test_analyze_pinned.py --write")
    if not HAS_EMBEDDING:
        sys.exit("models/embedding is needed to pin the embeddings")
    made = _analyzers()
    rows = [_outputs(t, made) for t in corpus()]
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_bytes(gzip.compress(json.dumps(rows, ensure_ascii=False).encode(), mtime=0))
    print(f"wrote {len(rows)} rows to {FIXTURE}")
