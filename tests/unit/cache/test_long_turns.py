"""Semantic cache on long turns: the embedding reads a turn's first 254 WordPiece ids only (rust/src/embed.rs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from fastroute._native import StaticEmbedder, normalize_key
from fastroute.cache import CacheScope, CacheSettings, SemanticCache, fingerprint_request
from fastroute.cache.verifier import MAX_VERIFIABLE_CHARS
from fastroute.embedding import EMBEDDING_DIM, load_embedder

MODELS = Path(__file__).resolve().parents[3] / "models"
FP = fingerprint_request({"model": "gpt-4o-mini", "temperature": 0})
SCOPE = CacheScope(tenant="app")
EMBED_WINDOW = 254

# A document past the window and within MAX_VERIFIABLE_CHARS (so the verifier, not R7, decides).
_GUIDE = (
    "The deployment guide describes how the service is rolled out across regions. Each region keeps its own "
    "queue of pending releases, and an operator approves the release after the canary hosts report healthy "
    "latency and error figures. When a canary fails, the release is paused, the previous build is restored on "
    "the affected hosts, and the owning team is paged with the failing checks attached. Configuration lives in "
    "a separate repository that is reviewed like code; secrets are read from the vault at start-up and never "
    "written to disk. The guide also explains how traffic is drained from a host before maintenance, how long "
    "connections are allowed to finish, and which dashboards show the state of a rollout. Teams are expected "
    "to keep their runbooks next to the service code, to rehearse a rollback every quarter, and to record each "
    "incident with a timeline, the customer impact and the follow-up work agreed in the review. "
)
DOCUMENT = _GUIDE + _GUIDE.replace("The deployment guide", "The same guide")


@dataclass(frozen=True)
class Analysis:
    key: str
    embedding: npt.NDArray[np.float32] | None = None


@pytest.fixture(scope="module")
def embedder() -> StaticEmbedder:
    if not (MODELS / "embedding" / "table.q8").is_file():
        pytest.skip("models/embedding not present")
    return load_embedder(MODELS)


def _cache_with(embedder: StaticEmbedder, text: str) -> SemanticCache:
    cache = SemanticCache(CacheSettings(), embedder.embed, EMBEDDING_DIM)
    cache.store(SCOPE, Analysis(normalize_key(text)), FP, text, {"answer": "x"})
    return cache


def test_the_document_is_past_the_window_and_verifiable(embedder: StaticEmbedder) -> None:
    assert len(embedder.token_ids(DOCUMENT)) > EMBED_WINDOW + 100
    assert len(DOCUMENT) + 100 < MAX_VERIFIABLE_CHARS


def test_a_long_turn_still_hits_itself_with_another_opening(embedder: StaticEmbedder) -> None:
    question = "Summarize the text above for a manager."
    cache = _cache_with(embedder, DOCUMENT + question)
    text = "Please answer this: " + DOCUMENT + question
    hit = cache.lookup(SCOPE, Analysis(normalize_key(text)), FP, text)
    assert hit is not None and hit.kind == "semantic"


def test_two_asks_after_one_long_document_are_not_served_from_each_other(embedder: StaticEmbedder) -> None:
    # The shared document dominates the embedding (similarity 0.9991 before the window, 1.0 with it) and the
    # asks differ in fewer content words than R8 allows; R9 (rust/src/verify/mod.rs) tells them apart.
    cache = _cache_with(embedder, DOCUMENT + "Summarize the text above for a manager.")
    other = DOCUMENT + "List the risks that the text above mentions."
    assert cache.lookup(SCOPE, Analysis(normalize_key(other)), FP, other) is None
