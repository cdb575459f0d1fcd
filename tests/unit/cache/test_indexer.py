"""Deferred HNSW indexing: waiting vectors are searched exhaustively, removed entries never come back, and the
inserts run off the loop's thread at idle priority."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from unittest import mock

import pytest

from fastroute._native import StaticEmbedder, normalize_key
from fastroute.cache import CacheScope, CacheSettings, SemanticCache, fingerprint_request
from fastroute.cache.indexer import BackgroundIndexer
from fastroute.cache.vectors import IndexBatch
from fastroute.embedding import EMBEDDING_DIM, load_embedder
from tests.unit.cache.test_semantic_cache import Analysis

MODELS = Path(__file__).resolve().parents[3] / "models"
FP = fingerprint_request({"model": "m", "temperature": 0})
A = CacheScope(tenant="app-a")


@pytest.fixture(scope="module")
def embedder() -> StaticEmbedder:
    return load_embedder(MODELS)


def put(cache: SemanticCache, text: str, answer: str, scope: CacheScope = A) -> None:
    cache.store(scope, Analysis(normalize_key(text)), FP, text, {"answer": answer})


def get(cache: SemanticCache, text: str, scope: CacheScope = A) -> str | None:
    hit = cache.lookup(scope, Analysis(normalize_key(text)), FP, text)
    return None if hit is None else f"{hit.kind}:{hit.body['answer']}"


def test_waiting_vectors_are_served_and_removed_entries_leave_the_index(embedder: StaticEmbedder) -> None:
    cache = SemanticCache(CacheSettings(max_entries=2), embedder.embed, EMBEDDING_DIM, defer_index=True)
    seed = "<user> Tell me a joke about cats"
    put(cache, seed, "joke")  # a partition's first vector is kept aside, without an index
    assert cache.unindexed == 0 and not cache._indexes
    put(cache, "<user> How do I reset my password?", "reset")  # the second builds the index: this one waits
    assert cache.unindexed == 1 and sum(len(index) for index in cache._indexes.values()) == 1
    cache.remove(cache.keys(A, Analysis(normalize_key(seed)), FP, seed).exact)
    assert get(cache, "<user> How can I reset my password?") == "semantic:reset"  # before any indexing
    assert get(cache, "<user> How can I reset my password?", CacheScope(tenant="app-b")) is None
    batch = cache.take_index_batch()
    assert batch is not None and len(batch) == 1 and cache.take_index_batch() is None
    assert get(cache, "<user> How can I reset my password?") == "semantic:reset"  # while being inserted
    put(cache, "<user> Recommend a banana bread recipe", "bread")
    put(cache, "<user> What is the capital of Portugal?", "lisbon")  # evicts the password entry in flight
    batch.run()
    cache.finish_index_batch(batch)
    assert get(cache, "<user> How can I reset my password?") is None
    cache.flush_index()
    assert cache.unindexed == 0
    assert get(cache, "<user> What's the capital of Portugal?") == "semantic:lisbon"
    assert sum(len(index) for index in cache._indexes.values()) == len(cache) == 2
    for text in ("<user> What is the capital of Portugal?", "<user> Recommend a banana bread recipe"):
        cache.remove(cache.keys(A, Analysis(normalize_key(text)), FP, text).exact)
    assert len(cache) == 0 and cache.bytes_used == 0 and not cache._indexes


async def test_background_indexer_drains_the_queue_off_the_loop(embedder: StaticEmbedder) -> None:
    cache = SemanticCache(CacheSettings(), embedder.embed, EMBEDDING_DIM)
    indexer = BackgroundIndexer(cache)
    await indexer.start()
    try:
        for i in range(20):  # fewer than the waiting cap: all deferred
            put(cache, f"<user> question {i} about the topic number {i * 7}", str(i))
        put(cache, "<user> How do I reset my password?", "reset")
        for _ in range(1000):  # up to 10 s: the indexer thread runs at idle priority, so a busy machine delays it
            if cache.unindexed == 0:
                break
            await asyncio.sleep(0.01)
        # the first vector went into the index when the second arrived, on the loop; the other 20 in the background
        assert cache.unindexed == 0 and indexer.indexed == 20 and indexer.batches >= 1
        assert get(cache, "<user> How can I reset my password?") == "semantic:reset"
        put(cache, "<user> What is the boiling point of water?", "100")
    finally:
        await indexer.close()
    assert not cache.defer_index and cache.unindexed == 0
    assert get(cache, "<user> What's the boiling point of water?") == "semantic:100"


def test_a_burst_beyond_the_waiting_cap_is_indexed_at_once(embedder: StaticEmbedder) -> None:
    cache = SemanticCache(CacheSettings(), embedder.embed, EMBEDDING_DIM, defer_index=True)
    for i in range(40):
        put(cache, f"<user> question {i} about the topic number {i * 7}", str(i))
    assert cache.unindexed == 32  # the rest went straight into the index
    assert sum(len(index) for index in cache._indexes.values()) == 8
    assert get(cache, "<user> question 3 about the topic number 21") == "exact:3"
    cache.flush_index()
    assert cache.unindexed == 0 and sum(len(index) for index in cache._indexes.values()) == 40


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes")
async def test_inserts_run_in_a_thread_that_yields_the_core_to_the_event_loop(embedder: StaticEmbedder) -> None:
    cache = SemanticCache(CacheSettings(), embedder.embed, EMBEDDING_DIM)
    seen: list[tuple[int, int]] = []  # (thread id, scheduling policy) of every batch
    original = IndexBatch.run

    def spy(batch: IndexBatch) -> None:
        seen.append((threading.get_native_id(), os.sched_getscheduler(0)))
        original(batch)

    for idle, policy in ((True, os.SCHED_IDLE), (False, os.SCHED_OTHER)):
        indexer = BackgroundIndexer(cache, idle=idle)
        await indexer.start()
        try:
            with mock.patch.object(IndexBatch, "run", spy):
                for i in range(3):
                    put(cache, f"<user> idle {idle} question {i} about topic {i * 11}", str(i))
                for _ in range(1000):  # up to 10 s (idle priority)
                    if cache.unindexed == 0 and seen:
                        break
                    await asyncio.sleep(0.01)
        finally:
            await indexer.close()
        assert seen and {p for _, p in seen} == {policy}
        assert all(tid != threading.get_native_id() for tid, _ in seen)  # never on the loop's thread
        seen.clear()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the loop's thread keeps its class
