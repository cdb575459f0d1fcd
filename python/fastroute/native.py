"""Typed wrappers over the private `fastroute._native` module: prompt analysis and token counting.

Reads model files only in `PromptAnalyzer.from_models_dir` (start-up), never per request. Every call into
native code releases the GIL while it works; inputs are plain `str`, outputs numpy arrays the native side
built (no per-element copy). Invalid arguments raise `ValueError`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final, Literal

from fastroute import _native

__all__ = [
    "ENCODINGS",
    "FEATURE_DIM",
    "FEATURE_VERSION",
    "TOKEN_FACTORS",
    "Encoding",
    "PromptAnalysis",
    "PromptAnalyzer",
    "count_tokens",
    "encoding_for_model",
    "estimate_tokens",
    "normalize_key",
]

Encoding = Literal["cl100k_base", "o200k_base"]
ENCODINGS: Final[tuple[Encoding, ...]] = ("cl100k_base", "o200k_base")
FEATURE_DIM: Final[int] = _native.FEATURE_DIM
FEATURE_VERSION: Final[int] = _native.FEATURE_VERSION

EMBEDDING_DIR = "embedding"
"""Folder under `models/` holding the static embedding (`tokenizer.json`, `table.q8`, see its CARD.md)."""

TOKEN_FACTORS: Final[dict[str, float]] = {
    "openai": 1.0,
    "anthropic": 1.2,
    "google": 1.0,
    "mistral": 1.1,
    "meta": 1.0,
}
"""Tokens per cl100k_base token, by model family without an exact tokenizer here.

These are deliberate over-estimates, not measurements: they feed budget reservations and context-window
checks, where counting high is the safe side. Anthropic does not publish its tokenizer; its models are
commonly observed to emit 10-30% more tokens than cl100k_base on English text, hence 1.2. Mistral's
SentencePiece vocabularies are smaller than cl100k's (1.1). Gemini and Llama 3 vocabularies are as
large or larger (1.0). Unknown families use 1.0 plus the caller's own margin. Replace a value when the
provider's reported `usage.prompt_tokens` says otherwise.
"""

# Model-name prefixes of OpenAI models on o200k_base; other OpenAI chat models use cl100k_base.
_O200K_PREFIXES: Final[tuple[str, ...]] = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")


PromptAnalysis = _native.Analysis
"""Everything routing and caching need from one conversation text (immutable, built by the native call).

Attributes:
    features: the complexity classifier's feature vector, float32 of length `FEATURE_DIM`
        (layout `FEATURE_VERSION`, see rust/src/features.rs).
    embedding: unit float32 embedding of the last user turn (see `fastroute.prompt`), or None when the
        analyzer has no embedding table.
    key: the exact-cache key (normalised conversation, see rust/src/normalize.rs); hash it before use.
    tokens: exact token count of the conversation text in the analyzer's encoding. The text carries
        one `<role>` marker per message, which stands in for the chat format's per-message overhead.

A native class rather than a dataclass: a frozen dataclass's constructor alone cost ~2 µs per request.
"""


class PromptAnalyzer:
    """Analyses conversation texts in one native call each; safe to share between threads.

    Args:
        encoding: the tiktoken encoding token counts use.
        tokenizer_json: the embedding's WordPiece `tokenizer.json` bytes (with `embedding_table`).
        embedding_table: the fp16 little-endian table, rows x `embedding_dim`.
        embedding_dim: the table's width.

    Raises:
        ValueError: unknown encoding, or embedding files that do not fit together.
    """

    __slots__ = ("_native",)

    def __init__(
        self,
        encoding: Encoding = "cl100k_base",
        *,
        tokenizer_json: bytes | None = None,
        embedding_table: bytes | None = None,
        embedding_dim: int = 0,
    ) -> None:
        self._native = _native.Analyzer(encoding, tokenizer_json, embedding_table, embedding_dim)

    @classmethod
    def from_models_dir(
        cls, models_dir: Path, encoding: Encoding = "cl100k_base", *, embedding: bool = True
    ) -> PromptAnalyzer:
        """An analyzer with the shipped embedding from `models_dir/embedding/`, if present.

        Args:
            models_dir: the `models/` folder.
            encoding: the tiktoken encoding token counts use.
            embedding: False skips the embedding even when its files are present.
        """
        folder = models_dir / EMBEDDING_DIR
        tokenizer, table = folder / "tokenizer.json", folder / "table.q8"
        if not (embedding and tokenizer.is_file() and table.is_file()):
            return cls(encoding)
        from fastroute.embedding import EMBEDDING_DIM

        return cls(
            encoding,
            tokenizer_json=tokenizer.read_bytes(),
            embedding_table=table.read_bytes(),
            embedding_dim=EMBEDDING_DIM,
        )

    @property
    def encoding(self) -> str:
        return self._native.encoding

    @property
    def embedding_dim(self) -> int:
        """Width of `PromptAnalysis.embedding`; 0 when the analyzer has no embedding."""
        return self._native.embedding_dim

    @property
    def embedder(self) -> _native.StaticEmbedder | None:
        """The analyzer's `StaticEmbedder`, sharing its table: give `.embed` to the semantic cache instead of
        loading the table a second time (~20 MB of RSS). None when the analyzer has no embedding."""
        return self._native.embedder

    def analyze(self, text: str) -> PromptAnalysis:
        """Features, embedding, exact key and token count of a `fastroute.prompt.conversation_text` string.

        Lone surrogates in `text` are replaced by U+FFFD (as tiktoken does) rather than raising.
        """
        return self._native.analyze(text)


def count_tokens(text: str, encoding: Encoding = "cl100k_base") -> int:
    """Exact token count, equal to tiktoken's `len(encoding.encode_ordinary(text))`.

    Special-token text such as `<|endoftext|>` counts as ordinary text; no chat-format overhead is added.

    Raises:
        ValueError: unknown encoding.
    """
    return _native.count_tokens(text, encoding)


def estimate_tokens(text: str, family: str) -> int:
    """Token estimate for a model family without an exact tokenizer: `ceil(cl100k count * factor)`.

    The factor is `TOKEN_FACTORS[family]` (1.0 for unknown families); see `TOKEN_FACTORS` for where each
    value comes from.
    """
    factor = TOKEN_FACTORS.get(family, 1.0)
    if not math.isfinite(factor) or factor <= 0:
        factor = 1.0
    return _native.estimate_tokens(text, factor)


def encoding_for_model(model: str) -> Encoding | None:
    """The tiktoken encoding of an OpenAI model name, or None for models of other families."""
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(_O200K_PREFIXES) or name.startswith("gpt-oss"):
        return "o200k_base"
    if name.startswith(("gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")):
        return "cl100k_base"
    return None


def normalize_key(text: str) -> str:
    """The exact-cache key of a conversation text (what `PromptAnalysis.key` holds)."""
    return _native.normalize_key(text)
