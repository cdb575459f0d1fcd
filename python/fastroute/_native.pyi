# Type stub of the private native module `fastroute._native` (rust/src/py/). Hand-written; checked against
# the built module by `python -m mypy.stubtest fastroute._native` (tests/native/test_stub.py).
# One section per area; whoever adds an export adds it to its section here and to `__all__`.

from typing import Final, final

import numpy as np
import numpy.typing as npt

__version__: Final[str]
__all__ = [
    "FEATURE_DIM",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "FEATURE_WINDOW_BYTES",
    "MAX_SUBSTITUTED_WORDS",
    "MAX_VERIFIABLE_CHARS",
    "NGRAM_BUCKETS",
    "NGRAM_VERSION",
    "NGRAM_WINDOW_BYTES",
    "Analysis",
    "Analyzer",
    "ContentRules",
    "EntryTable",
    "NgramTable",
    "PiiScanner",
    "PromptSignature",
    "StaticEmbedder",
    "TableEntry",
    "VectorIndex",
    "__version__",
    "count_tokens",
    "encode_tokens",
    "estimate_tokens",
    "extract_features",
    "last_user_turn",
    "ngram_buckets",
    "ngram_vector",
    "normalize_key",
    "prompt_signature",
    "verify_signatures",
]

# --- prompt analysis and token counting (rust/src/py/analyze.rs, rust/src/py/tokens.rs) ---------------

FEATURE_VERSION: Final[int]
FEATURE_DIM: Final[int]

@final
class Analysis:
    """What `Analyzer.analyze` returns (immutable; built natively, no Python constructor on the hot path)."""

    @property
    def features(self) -> npt.NDArray[np.float32]: ...
    @property
    def embedding(self) -> npt.NDArray[np.float32] | None: ...
    @property
    def key(self) -> str: ...
    @property
    def tokens(self) -> int: ...

@final
class Analyzer:
    """One call per prompt: `analyze(text) -> Analysis(features, embedding | None, key, tokens)`."""

    def __new__(
        cls,
        encoding: str = "cl100k_base",
        tokenizer_json: bytes | None = None,
        embedding_table: bytes | None = None,
        embedding_dim: int = 0,
    ) -> Analyzer: ...
    def analyze(self, text: str) -> Analysis: ...
    @property
    def encoding(self) -> str: ...
    @property
    def embedding_dim(self) -> int: ...
    @property
    def embedder(self) -> StaticEmbedder | None:
        """The analyzer's embedder, sharing its table (no second copy in memory)."""

def count_tokens(text: str, encoding: str = "cl100k_base") -> int: ...
def encode_tokens(text: str, encoding: str = "cl100k_base") -> list[int]: ...
def estimate_tokens(text: str, factor: float) -> int: ...
def normalize_key(text: str) -> str: ...
def last_user_turn(text: str) -> str: ...

# --- complexity-router features (rust/src/py/features.rs) ---------------------------------------------

FEATURE_NAMES: Final[list[str]]
FEATURE_WINDOW_BYTES: Final[int]

def extract_features(text: str) -> npt.NDArray[np.float32]: ...

# --- complexity-router hashed word n-grams (rust/src/py/ngrams.rs) ----------------------------------------

NGRAM_VERSION: Final[int]
NGRAM_BUCKETS: Final[int]
NGRAM_WINDOW_BYTES: Final[int]

def ngram_buckets(text: str) -> npt.NDArray[np.uint32]: ...
def ngram_vector(text: str) -> npt.NDArray[np.float32]: ...
@final
class NgramTable:
    def __new__(cls, weights: npt.NDArray[np.float32]) -> NgramTable: ...
    def dot(self, text: str) -> float: ...

# --- static embedding (rust/src/py/embed.rs) ----------------------------------------------------------

@final
class StaticEmbedder:
    def __new__(cls, tokenizer_json: bytes, table_f16_le: bytes, dim: int) -> StaticEmbedder: ...
    @property
    def dim(self) -> int: ...
    def embed(self, text: str) -> npt.NDArray[np.float32]: ...
    def embed_batch(self, texts: list[str]) -> npt.NDArray[np.float32]: ...
    def token_ids(self, text: str) -> list[int]: ...

# --- HNSW vector index (rust/src/py/index.rs) ---------------------------------------------------------

@final
class VectorIndex:
    def __new__(
        cls,
        dim: int,
        m: int = 16,
        ef_construction: int = 200,
        max_elements: int = 1000000,
        half: bool = False,
        int8: bool = False,
    ) -> VectorIndex: ...
    @property
    def dim(self) -> int: ...
    @property
    def half(self) -> bool: ...
    @property
    def precision(self) -> str: ...
    @property
    def memory_bytes(self) -> int: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: int, /) -> bool: ...
    def add(self, ids: npt.NDArray[np.uint64], vectors: npt.NDArray[np.float32]) -> None: ...
    def delete(self, id: int) -> bool: ...
    def search(
        self, vector: npt.NDArray[np.float32], k: int = 1, ef: int = 64
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]: ...
    def search_pairs(self, vector: npt.NDArray[np.float32], k: int = 1, ef: int = 64) -> list[tuple[int, float]]: ...
    def search_batch(
        self, vectors: npt.NDArray[np.float32], k: int = 1, ef: int = 64
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> VectorIndex: ...

# --- response-cache entry table (rust/src/py/entry_table.rs) ------------------------------------------

@final
class TableEntry:
    @property
    def key_hash(self) -> int: ...
    @property
    def partition(self) -> int: ...
    @property
    def tenant(self) -> int: ...
    @property
    def created(self) -> float: ...
    @property
    def expires(self) -> float: ...
    @property
    def loc(self) -> int: ...
    @property
    def key_len(self) -> int: ...
    @property
    def turn_len(self) -> int: ...
    @property
    def body_len(self) -> int: ...
    @property
    def size(self) -> int: ...

@final
class EntryTable:
    def __new__(cls) -> EntryTable: ...
    def __len__(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...
    def insert(
        self,
        key_hash: int,
        partition: int,
        tenant: int,
        created: float,
        expires: float,
        loc: int,
        key_len: int,
        turn_len: int,
        body_len: int,
        size: int,
    ) -> tuple[int, tuple[int, TableEntry] | None]: ...
    def find(self, key_hash: int) -> int | None: ...
    def get(self, id: int) -> TableEntry | None: ...
    def touch(self, id: int) -> bool: ...
    def relocate(self, id: int, loc: int) -> bool: ...
    def remove(self, id: int) -> TableEntry | None: ...
    def oldest(self) -> int | None: ...
    def pop_expired(self, now: float) -> int | None: ...
    def ids_in(self, lo: int, hi: int) -> list[int]: ...
    def clear(self) -> None: ...

# --- semantic-cache verifier (rust/src/py/verify.rs) ---------------------------------------------------

MAX_VERIFIABLE_CHARS: Final[int]
MAX_SUBSTITUTED_WORDS: Final[int]

@final
class PromptSignature:
    """Opaque: what the verifier compares (numbers, negations, options, entities, order, code, words)."""

def prompt_signature(text: str) -> PromptSignature: ...
def verify_signatures(query: PromptSignature, cached: PromptSignature) -> str | None: ...

# --- PII scanning (rust/src/py/pii.rs) ----------------------------------------------------------------

@final
class PiiScanner:
    def __new__(cls, extra: list[tuple[str, str]] = ...) -> PiiScanner: ...
    @property
    def kinds(self) -> list[str]: ...
    def scan(self, text: str) -> list[tuple[str, int, int]]: ...
    def redact(self, text: str) -> tuple[str, list[str]]: ...
    def redact_many(self, texts: list[str]) -> list[tuple[str, list[str]]]: ...

# --- content rules (rust/src/py/content_rules.rs) -------------------------------------------------------

@final
class ContentRules:
    def __new__(cls, rules: list[tuple[list[str], list[str]]]) -> ContentRules: ...
    def __len__(self) -> int: ...
    def scan(self, text: str) -> list[int]: ...
    def scan_many(self, texts: list[str]) -> list[int]: ...
