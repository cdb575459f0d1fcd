"""The prompt-analysis contract of `fastroute._native` and its typed wrappers (`fastroute.native`).

Covers: one call returns features/embedding/key/tokens consistent with the separate functions; numpy
outputs own their memory (no copy of a Python list); the analyzer is shared safely by threads; arbitrary
unicode (lone surrogates, NULs, huge strings) gives a result or a ValueError, never a crash or a panic;
the canonical conversation text keeps conversations apart.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastroute import _native
from fastroute.native import (
    FEATURE_DIM,
    PromptAnalysis,
    PromptAnalyzer,
    count_tokens,
    encoding_for_model,
    estimate_tokens,
    normalize_key,
)
from fastroute.prompt import conversation_text

MODELS = Path(__file__).resolve().parents[2] / "models"
HAS_EMBEDDING = (MODELS / "embedding" / "table.q8").is_file()


@pytest.fixture(scope="module")
def analyzer() -> PromptAnalyzer:
    return PromptAnalyzer("cl100k_base")


@pytest.fixture(scope="module")
def embedding_analyzer() -> PromptAnalyzer:
    if not HAS_EMBEDDING:
        pytest.skip("models/embedding not present")
    return PromptAnalyzer.from_models_dir(MODELS)


def test_analysis_agrees_with_the_separate_functions(analyzer: PromptAnalyzer) -> None:
    text = conversation_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is  2+2?"}])
    result = analyzer.analyze(text)
    assert isinstance(result, PromptAnalysis)
    assert result.features.dtype == np.float32 and result.features.shape == (FEATURE_DIM,)
    np.testing.assert_array_equal(result.features, _native.extract_features(text))
    assert result.embedding is None
    assert result.key == normalize_key(text) == "<system> be brief\n<user> what is 2+2"
    assert result.tokens == count_tokens(text, "cl100k_base")


def test_arrays_are_owned_numpy_buffers(analyzer: PromptAnalyzer) -> None:
    result = analyzer.analyze("hello")
    assert result.features.flags.owndata or result.features.base is not None
    assert result.features.flags.c_contiguous and result.features.flags.writeable


def test_encoding_choice_changes_the_count() -> None:
    text = "Überprüfung der Straßenverkehrsordnung 日本語のテキスト"
    cl = PromptAnalyzer("cl100k_base").analyze(text).tokens
    o = PromptAnalyzer("o200k_base").analyze(text).tokens
    assert cl == count_tokens(text, "cl100k_base")
    assert o == count_tokens(text, "o200k_base")
    assert cl != o


def test_bad_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="unknown encoding"):
        PromptAnalyzer("gpt2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="go together"):
        _native.Analyzer("cl100k_base", b"{}", None, 8)
    with pytest.raises(ValueError):
        _native.Analyzer("cl100k_base", b"not json", b"\0" * 16, 8)


def test_embedding_is_the_last_user_turn(embedding_analyzer: PromptAnalyzer) -> None:
    text = conversation_text(
        [
            {"role": "user", "content": "Tell me about cats."},
            {"role": "assistant", "content": "Cats are small felines."},
            {"role": "user", "content": "How do I bake bread?"},
        ]
    )
    result = embedding_analyzer.analyze(text)
    assert result.embedding is not None
    assert result.embedding.shape == (embedding_analyzer.embedding_dim,)
    assert abs(float(np.linalg.norm(result.embedding)) - 1.0) < 1e-4
    alone = embedding_analyzer.analyze("How do I bake bread?").embedding
    other = embedding_analyzer.analyze("Tell me about cats.").embedding
    assert alone is not None and other is not None
    np.testing.assert_allclose(result.embedding, alone, atol=1e-6)
    assert float(result.embedding @ other) < 0.99


def test_shared_embedder_gives_the_analysis_embedding(
    embedding_analyzer: PromptAnalyzer, analyzer: PromptAnalyzer
) -> None:
    embedder = embedding_analyzer.embedder
    assert embedder is not None and embedder.dim == embedding_analyzer.embedding_dim
    long_turn = "Our quarterly report covers sales, hiring and the new office; it runs long. " * 40 + "Summarize it."
    for turn in ("How do I bake bread?", "Café 東京 résumé: 12,345 tokens!", "", long_turn):
        analysis = embedding_analyzer.analyze(conversation_text([{"role": "user", "content": turn}]))
        assert analysis.embedding is not None
        np.testing.assert_array_equal(embedder.embed(turn), analysis.embedding)
    assert analyzer.embedder is None


def test_analysis_is_an_immutable_native_result(analyzer: PromptAnalyzer) -> None:
    result = analyzer.analyze("<user> hi")
    with pytest.raises(AttributeError):
        result.tokens = 5  # type: ignore[misc]
    assert "tokens=" in repr(result)


def test_shared_by_threads(analyzer: PromptAnalyzer) -> None:
    texts = [f"<user> question number {i} about {'x' * i}" for i in range(64)]
    expected = [analyzer.analyze(t) for t in texts]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                for text, want in zip(texts, expected, strict=True):
                    got = analyzer.analyze(text)
                    assert got.key == want.key and got.tokens == want.tokens
                    np.testing.assert_array_equal(got.features, want.features)
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_estimates_and_model_encodings() -> None:
    text = "Estimate me, please: forty-two tokens or so, give or take a few."
    exact = count_tokens(text)
    assert estimate_tokens(text, "openai") == exact
    assert estimate_tokens(text, "anthropic") >= exact
    assert estimate_tokens(text, "never-heard-of-it") == exact
    assert encoding_for_model("gpt-4o-mini") == "o200k_base"
    assert encoding_for_model("openai/gpt-4-turbo") == "cl100k_base"
    assert encoding_for_model("claude-sonnet-4") is None


# --- conversation text and exact keys ----------------------------------------------------------------


def test_conversation_text_format() -> None:
    text = conversation_text(
        [
            {"role": "system", "content": "S"},
            {
                "role": "user",
                "name": "Alice Smith",
                "content": [{"type": "text", "text": "look"}, {"type": "image_url"}],
            },
            {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "content": "42"},
        ],
        tools=True,
        json_mode=True,
    )
    assert text == (
        "<system> S\n<user:alicesmith> look\n<image_url>\n<assistant> \n<tool_call> f {}\n<tool> 42\n<tools>\n<json>"
    )


def test_conversations_with_different_structure_never_share_a_key() -> None:
    one_turn = conversation_text([{"role": "user", "content": "a\n<user> b"}])
    two_turns = conversation_text([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    other_role = conversation_text([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    flagged = conversation_text([{"role": "user", "content": "a"}], json_mode=True)
    plain = conversation_text([{"role": "user", "content": "a"}])
    keys = {normalize_key(t) for t in (one_turn, two_turns, other_role, flagged, plain)}
    assert len(keys) == 5
    assert _native.last_user_turn(two_turns) == "b"
    assert _native.last_user_turn(one_turn) == "a\n<<user> b"


def test_cosmetic_differences_share_a_key() -> None:
    a = conversation_text([{"role": "user", "content": "What is the capital of France?"}])
    b = conversation_text([{"role": "user", "content": "  what is the CAPITAL of   france "}])
    assert normalize_key(a) == normalize_key(b)


messages_strategy = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "tool", "", "X-1"]), "content": st.text()}
    ),
    max_size=5,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages_strategy, messages_strategy)
def test_keys_separate_structurally_different_conversations(a: list[dict[str, str]], b: list[dict[str, str]]) -> None:
    ta, tb = conversation_text(a), conversation_text(b)
    # A message whose text normalises to nothing (blank, or only a closing "?" or "!", which the key drops as
    # cosmetic) is as good as empty; which messages have content must match.
    filled_a = [normalize_key(m["content"]) != "" for m in a]
    if normalize_key(ta) == normalize_key(tb):
        assert len(a) == len(b), (ta, tb)
        assert filled_a == [normalize_key(m["content"]) != "" for m in b]


# --- fuzz: no panic, no crash, a result or ValueError --------------------------------------------------

FUZZ_ENCODINGS = st.sampled_from(["cl100k_base", "o200k_base"])


def _surrogate_text(data: bytes) -> str:
    """Arbitrary bytes as a str that may hold lone surrogates and NULs."""
    return data.decode("utf-16-le", "surrogatepass") if len(data) % 2 == 0 else data.decode("latin-1")


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.binary().map(_surrogate_text)), FUZZ_ENCODINGS)
def test_fuzz_analyze_and_count_never_crash(text: str, encoding: str) -> None:
    analyzer = PromptAnalyzer("o200k_base" if encoding == "o200k_base" else "cl100k_base")
    try:
        result = analyzer.analyze(text)
    except ValueError:
        return
    assert result.tokens >= 0 and result.features.shape == (FEATURE_DIM,)
    assert _native.count_tokens(text, encoding) == result.tokens
    assert isinstance(normalize_key(text), str)
    assert all(np.isfinite(result.features))


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=8), st.integers(min_value=10_000, max_value=200_000))
def test_fuzz_huge_repeated_strings(unit: str, size: int) -> None:
    text = (unit * (size // len(unit) + 1))[:size]
    tokens = _native.count_tokens(text, "cl100k_base")
    assert 0 < tokens <= len(text.encode("utf-8", "surrogatepass"))


def test_huge_prompt_is_analysed(analyzer: PromptAnalyzer) -> None:
    text = "<user> " + "All work and no play makes Jack a dull boy. " * 50_000
    result = analyzer.analyze(text)
    assert result.tokens > 400_000
    assert len(result.key) > 1_000_000
