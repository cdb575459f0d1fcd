"""`_native.StaticEmbedder`: WordPiece parity with `tokenizers`, unit vectors, sane similarities, no panics."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastroute._native import StaticEmbedder
from fastroute.embedding import EMBEDDING_DIM, load_embedder

MODELS = Path(__file__).resolve().parents[2] / "models"
TOKENIZER = MODELS / "embedding" / "tokenizer.json"


@pytest.fixture(scope="module")
def embedder() -> StaticEmbedder:
    return load_embedder(MODELS)


def _corpus() -> list[str]:
    rng = random.Random(7)
    base = [
        "Hello, World! How's it going?",
        "Café naïve résumé coöperate Ångström",
        "東京は日本の首都です。中文字符测试",
        "Emoji 🤗🚀 and symbols ©®™ — “quotes” \u2018single\u2019 …",
        "def f(x):\n\treturn x**2  # comment\r\n",
        "unaffable antidisestablishmentarianism supercalifragilisticexpialidocious",
        "Tab\tseparated\x0bvertical\x0cform\x00nul\u200bzero-width\ufeffbom\ufffdreplacement",
        "İstanbul ß ﬁ ligature Ⅻ ½ ²",
        "   leading and trailing   ",
        "",
        "x" * 150,
        "Ελληνικά кириллица العربية עברית हिन्दी ไทย",
    ]
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?'\"()[]{}<>/\\-_=+*&^%$#@~`\n\téüñçøå中日😀"
    for _ in range(300):
        base.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120))))
    return base


def test_wordpiece_matches_tokenizers_package(embedder: StaticEmbedder) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    ref = tokenizers.Tokenizer.from_file(str(TOKENIZER))
    for text in _corpus():
        expected = ref.encode(text, add_special_tokens=False).ids
        assert embedder.token_ids(text) == expected, text


EMBED_WINDOW = 254  # rust/src/embed.rs: the teacher's max_seq_length 256 less [CLS] and [SEP]
_REPORT = "The quarterly report covers sales in the north, hiring plans and the move to the new office. "


def test_embedding_reads_only_the_teachers_window(embedder: StaticEmbedder) -> None:
    words = (_REPORT * 30).split(" ")
    doc = " ".join(words)
    ids = embedder.token_ids(doc)
    assert len(ids) > EMBED_WINDOW + 50
    tokenizers = pytest.importorskip("tokenizers")
    teacher = tokenizers.Tokenizer.from_file(str(TOKENIZER))
    teacher.enable_truncation(EMBED_WINDOW + 2)
    assert teacher.encode(doc).ids[1:-1] == ids[:EMBED_WINDOW]
    # The shortest run of words with a full window embeds like the whole text; one word fewer does not.
    cut = next(n for n in range(len(words)) if len(embedder.token_ids(" ".join(words[:n]))) >= EMBED_WINDOW)
    whole = embedder.embed(doc)
    np.testing.assert_array_equal(embedder.embed(" ".join(words[:cut])), whole)
    assert not np.array_equal(embedder.embed(" ".join(words[: cut - 1])), whole)
    # What follows the window is not read: two questions after one long document embed alike.
    np.testing.assert_array_equal(
        embedder.embed(doc + " Summarize it for a manager."), embedder.embed(doc + " Which risks does it name?")
    )


def test_vectors_are_unit_and_deterministic(embedder: StaticEmbedder) -> None:
    v = embedder.embed("What is the capital of France?")
    assert v.dtype == np.float32 and v.shape == (EMBEDDING_DIM,)
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    assert np.array_equal(v, embedder.embed("What is the capital of France?"))
    batch = embedder.embed_batch(["What is the capital of France?", "", "hello"])
    assert batch.shape == (3, EMBEDDING_DIM)
    assert np.allclose(batch[0], v) and not batch[1].any()


def test_paraphrase_closer_than_unrelated(embedder: StaticEmbedder) -> None:
    a = embedder.embed("How do I reset my password?")
    b = embedder.embed("What are the steps to reset my password?")
    c = embedder.embed("Recommend a good recipe for banana bread.")
    assert float(a @ b) > float(a @ c) + 0.1


def test_bad_inputs_raise_value_error() -> None:
    tok = TOKENIZER.read_bytes()
    with pytest.raises(ValueError):
        StaticEmbedder(tok, b"\x00" * 10, EMBEDDING_DIM)
    with pytest.raises(ValueError):
        StaticEmbedder(b"{not json", b"\x00" * 512, EMBEDDING_DIM)
    with pytest.raises(ValueError):
        StaticEmbedder(json.dumps({"model": {"type": "BPE"}}).encode(), b"", 1)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_unicode_never_fails(text: str) -> None:
    emb = _shared()
    v = emb.embed(text)
    assert v.shape == (EMBEDDING_DIM,) and np.isfinite(v).all()
    assert all(0 <= i < 30522 for i in emb.token_ids(text))


_CACHE: list[StaticEmbedder] = []


def _shared() -> StaticEmbedder:
    if not _CACHE:
        _CACHE.append(load_embedder(MODELS))
    return _CACHE[0]
