"""`SemanticCache`: exact and semantic hits, isolation by tenant / fingerprint / context, TTL and bounds."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from fastroute._native import StaticEmbedder, TableEntry, normalize_key
from fastroute.cache import CacheScope, CacheSettings, SemanticCache, fingerprint_request
from fastroute.cache.body_log import BodyLog
from fastroute.cache.keys import exact_key, partition_key, split_conversation
from fastroute.cache.types import CacheEntry, RequestKeys
from fastroute.embedding import EMBEDDING_DIM, load_embedder

MODELS = Path(__file__).resolve().parents[3] / "models"
FP = fingerprint_request({"model": "gpt-4o-mini", "temperature": 0})
A = CacheScope(tenant="app-a")
B = CacheScope(tenant="app-b")


@dataclass(frozen=True)
class Analysis:
    key: str
    embedding: npt.NDArray[np.float32] | None = None


def an(text: str) -> Analysis:
    return Analysis(normalize_key(text))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def embedder() -> StaticEmbedder:
    return load_embedder(MODELS)


def make(embedder: StaticEmbedder, clock: Clock | None = None, **kw: object) -> SemanticCache:
    settings = CacheSettings(**kw)  # type: ignore[arg-type]
    return SemanticCache(settings, embedder.embed, EMBEDDING_DIM, clock=clock or Clock())


def put(cache: SemanticCache, text: str, scope: CacheScope = A, fp: str = FP, answer: str = "x") -> None:
    cache.store(scope, an(text), fp, text, {"answer": answer})


def get(cache: SemanticCache, text: str, scope: CacheScope = A, fp: str = FP) -> str | None:
    hit = cache.lookup(scope, an(text), fp, text)
    return None if hit is None else f"{hit.kind}:{hit.body['answer']}"


def test_exact_then_semantic_then_verified_miss(embedder: StaticEmbedder) -> None:
    cache = make(embedder)
    put(cache, "<user> How do I reset my password?", answer="reset")
    assert get(cache, "<user>   how do I reset my PASSWORD?") == "exact:reset"
    assert get(cache, "<user> How can I reset my password?") == "semantic:reset"
    assert get(cache, "<user> How do I not reset my password?") is None  # verifier: negation
    assert get(cache, "<user> Recommend a banana bread recipe") is None
    assert cache.counters["hit_exact"] == 1 and cache.counters["hit_semantic"] == 1


def test_tenant_a_never_receives_tenant_b_entry(embedder: StaticEmbedder) -> None:
    cache = make(embedder)
    put(cache, "<user> What is the boiling point of water?", scope=B, answer="b-secret")
    for text in ("<user> What is the boiling point of water?", "<user> what is the boiling point of water"):
        assert get(cache, text, scope=A) is None
        assert get(cache, text, scope=B) is not None


def test_fingerprint_and_context_isolate_entries(embedder: StaticEmbedder) -> None:
    cache = make(embedder)
    text = "<system> Answer in English.\n<user> What is the boiling point of water?"
    put(cache, text, answer="en")
    other_model = fingerprint_request({"model": "gpt-4o", "temperature": 0})
    assert get(cache, text, fp=other_model) is None
    json_mode = fingerprint_request({"model": "gpt-4o-mini", "temperature": 0, "response_format": {"type": "json"}})
    assert get(cache, text, fp=json_mode) is None
    # Same last turn under another system prompt: no semantic neighbour at all.
    assert get(cache, "<system> Answer in French.\n<user> What's the boiling point of water?") is None
    assert get(cache, "<system> Answer in English.\n<user> What's the boiling point of water?") == "semantic:en"
    # Streaming and user fields do not change the answer.
    assert fingerprint_request({"model": "m", "stream": True, "user": "u"}) == fingerprint_request({"model": "m"})


def test_temperature_above_limit_bypasses_semantic_level_only(embedder: StaticEmbedder) -> None:
    cache = make(embedder, semantic_temperature_max=0.2)
    put(cache, "<user> How do I reset my password?", answer="r")
    hot = CacheScope(tenant="app-a", temperature=0.9)
    assert get(cache, "<user> How can I reset my password?", scope=hot) is None
    assert get(cache, "<user> How do I reset my password?", scope=hot) == "exact:r"
    assert cache.counters["semantic_bypass_temperature"] == 1
    assert get(cache, "<user> How can I reset my password?", scope=CacheScope("app-a", 0.1)) == "semantic:r"
    assert get(cache, "<user> How can I reset my password?", scope=CacheScope("app-a", semantic=False)) is None


def test_entries_above_the_temperature_limit_get_no_vector(embedder: StaticEmbedder) -> None:
    # The fingerprint holds the temperature, so every lookup in a hot entry's partition skips the semantic
    # level: the entry is stored for exact hits only (no embedding, no index insert, fewer bytes).
    cache = make(embedder, semantic_temperature_max=0.2)
    hot, cool = CacheScope("app-a", temperature=0.7), CacheScope("app-a", temperature=0.2)
    hot_fp = fingerprint_request({"model": "gpt-4o-mini", "temperature": 0.7})
    text = "<user> How do I reset my password?"
    stored = cache.store(hot, Analysis(normalize_key(text), embedder.embed(text)), hot_fp, text, {"answer": "h"})
    assert stored is not None and stored.embedding is None
    assert cache.unindexed == 0
    assert get(cache, text, scope=hot, fp=hot_fp) == "exact:h"
    assert get(cache, "<user> How can I reset my password?", scope=hot, fp=hot_fp) is None
    kept = cache.store(cool, Analysis(normalize_key(text), embedder.embed(text)), FP, text, {"answer": "h"})
    assert kept is not None and kept.embedding is not None
    assert kept.size > stored.size
    assert get(cache, "<user> How can I reset my password?", scope=cool) == "semantic:h"


def test_ttl_expires_entries(embedder: StaticEmbedder) -> None:
    clock = Clock()
    cache = make(embedder, clock, ttl_s=60.0)
    put(cache, "<user> How do I reset my password?")
    clock.now += 59
    assert get(cache, "<user> How do I reset my password?") is not None
    clock.now += 2
    assert get(cache, "<user> How do I reset my password?") is None
    assert get(cache, "<user> How can I reset my password?") is None
    assert len(cache) == 0 and cache.bytes_used == 0


def test_lru_eviction_by_entries_keeps_recently_used(embedder: StaticEmbedder) -> None:
    cache = make(embedder, max_entries=3)
    for i in range(3):
        put(cache, f"<user> question number {i}", answer=str(i))
    assert get(cache, "<user> question number 0") == "exact:0"  # now most recently used
    put(cache, "<user> question number 3", answer="3")
    assert len(cache) == 3
    assert get(cache, "<user> question number 1") is None  # the least recently used went
    assert get(cache, "<user> question number 0") == "exact:0"


def test_eviction_keeps_memory_bounded(embedder: StaticEmbedder) -> None:
    limit = 200_000
    cache = make(embedder, max_bytes=limit, max_entries=1_000_000)
    big = "y" * 2_000
    for i in range(500):
        put(cache, f"<user> distinct prompt {i} about topic {i * 7}", answer=big)
        assert cache.bytes_used <= limit
    assert 0 < len(cache) < 500 and cache.counters["evicted"] == 500 - len(cache)
    # An answer larger than the whole budget is not stored at all.
    assert cache.store(A, an("<user> huge"), FP, "<user> huge", {"answer": "z" * (2 * limit)}) is None


def test_replacing_an_entry_and_disabled_cache(embedder: StaticEmbedder) -> None:
    cache = make(embedder)
    put(cache, "<user> How do I reset my password?", answer="old")
    put(cache, "<user> How do I reset my password?", answer="new")
    assert len(cache) == 1 and get(cache, "<user> How can I reset my password?") == "semantic:new"
    off = make(embedder, enabled=False)
    put(off, "<user> hi there")
    assert len(off) == 0 and get(off, "<user> hi there") is None


def test_analysis_embedding_is_used_when_given(embedder: StaticEmbedder) -> None:
    cache = SemanticCache(CacheSettings(), None, EMBEDDING_DIM)  # no embedder of its own
    text = "<user> How do I reset my password?"
    cache.store(A, Analysis(normalize_key(text), embedder.embed(split_conversation(text)[1])), FP, text, {"a": 1})
    query = "<user> How can I reset my password?"
    hit = cache.lookup(A, Analysis(normalize_key(query), embedder.embed(split_conversation(query)[1])), FP, query)
    assert hit is not None and hit.kind == "semantic" and hit.similarity > 0.9
    assert cache.lookup(A, an(query), FP, query) is None  # no embedding anywhere: exact level only


def test_split_conversation() -> None:
    assert split_conversation("plain text") == ("", "plain text")
    assert split_conversation("<user> hi") == ("", "hi")
    assert split_conversation("<system> s\n<user> a\n<assistant> b\n<user> c") == (
        "<system> s\n<user> a\n<assistant> b",
        "c",
    )


def test_settings_from_env() -> None:
    s = CacheSettings.from_env(
        {"FASTROUTE_CACHE_SIMILARITY": "0.9", "FASTROUTE_CACHE_TTL_S": "30", "FASTROUTE_REDIS_URL": "redis://h"}
    )
    assert s.similarity == 0.9 and s.ttl_s == 30.0 and s.redis_url == "redis://h" and s.enabled
    assert "redis://h" not in repr(s)
    with pytest.raises(ValueError, match="FASTROUTE_CACHE_SIMILARITY"):
        CacheSettings.from_env({"FASTROUTE_CACHE_SIMILARITY": "2"})


def test_served_bodies_are_copies_and_shared_keys_give_the_same_answers(embedder: StaticEmbedder) -> None:
    cache = make(embedder)
    text = "<system> Be brief.\n<user> How do I reset my password?"
    keys = cache.keys(A, an(text), FP, text)
    assert keys.turn == "How do I reset my password?"
    cache.store(A, an(text), FP, text, {"answer": "reset", "n": [1, 2]}, keys)
    hit = cache.lookup(A, an(text), FP, text, keys)
    assert hit is not None and hit.kind == "exact" and hit.body == {"answer": "reset", "n": [1, 2]}
    hit.body["answer"] = "tampered"  # a caller mutating what it was served does not change the cache
    assert get(cache, text) == "exact:reset"
    paraphrase = "<system> Be brief.\n<user> How can I reset my password?"
    assert get(cache, paraphrase) == "semantic:reset"
    assert cache.lookup(A, an(paraphrase), FP, paraphrase, cache.keys(A, an(paraphrase), FP, paraphrase)) is not None
    # Keys of another tenant never reach this tenant's entries, even when passed explicitly.
    assert cache.lookup(B, an(text), FP, text, cache.keys(B, an(text), FP, text)) is None


def test_single_turn_partition_keys_are_kept_per_tenant_and_fingerprint(embedder: StaticEmbedder) -> None:
    cache = make(embedder)
    other_fp = fingerprint_request({"model": "gpt-4o", "temperature": 0})
    texts = ["<user> What is a monad?", "Plain text without roles", "<system> Be brief.\n<user> What is a monad?"]
    for _ in range(2):  # the second pass is served from the kept partition keys
        for scope, fp in ((A, FP), (B, FP), (A, other_fp)):
            for text in texts:
                context, turn = split_conversation(text)
                keys = cache.keys(scope, an(text), fp, text)
                assert keys == RequestKeys(
                    exact_key(scope.tenant, fp, an(text).key), partition_key(scope.tenant, fp, context), turn
                )
    assert len({cache.keys(s, an(texts[0]), f, texts[0]).partition for s in (A, B) for f in (FP, other_fp)}) == 4
    for n in range(3000):  # the kept keys stay bounded
        cache.keys(CacheScope(tenant=f"t{n}"), an(texts[0]), FP, texts[0])
    assert len(cache._first_turn_partitions) <= 1024


def test_churn_keeps_the_body_log_bounded_and_moved_entries_readable(embedder: StaticEmbedder) -> None:
    log = BodyLog(segment_bytes=64 * 1024)
    cache = SemanticCache(CacheSettings(max_entries=40), embedder.embed, EMBEDDING_DIM, clock=Clock(), body_log=log)
    put(cache, "<user> the pinned question about invoices", answer="pinned " + "p" * 1_500)
    for i in range(3_000):
        put(cache, f"<user> distinct prompt {i} about topic {i * 7}", answer=f"{i} " + "y" * 1_500)
        if i % 10 == 0:  # kept recently used, so it lives on while its first segment empties around it
            assert get(cache, "<user> the pinned question about invoices") == "exact:pinned " + "p" * 1_500
    assert len(cache) == 40
    assert cache.counters["log_compactions"] > 0
    # 40 live entries of ~1.6 KB: the files hold a few segments, not the ~5 MB written.
    assert log.file_bytes < 6 * 64 * 1024
    assert get(cache, "<user> distinct prompt 2999 about topic 20993") == "exact:2999 " + "y" * 1_500
    assert get(cache, "<user> distinct prompt 2998 about topic 20986") == "exact:2998 " + "y" * 1_500


def test_an_exact_key_whose_hash_collides_is_a_miss_not_another_answer(embedder: StaticEmbedder) -> None:
    cache = make(embedder)
    first, second = "0123456789abcdef" + "0" * 16, "0123456789abcdef" + "1" * 16  # same leading 64 bits
    for key, answer in ((first, "first"), (second, "second")):
        entry = CacheEntry(key, "app-a", FP, "p", "<user> q", {"answer": answer}, None, 1_000.0, 9_000.0)
        assert cache.insert_entry(entry)
    hit = cache.lookup(A, an("<user> q"), FP, "<user> q", RequestKeys(second, "p", "q"))
    assert hit is not None and hit.body["answer"] == "second"
    assert cache.lookup(A, an("<user> q"), FP, "<user> q", RequestKeys(first, "p", "q")) is None
    assert cache.remove(second) and len(cache) == 0 and cache.bytes_used == 0


def test_a_body_log_that_fails_means_misses_and_unstored_answers_never_errors(
    embedder: StaticEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make(embedder)
    put(cache, "<user> How do I reset my password?", answer="kept")
    for i in range(40):  # > one 64 KiB write batch: the first record is in the file, not the buffer
        put(cache, f"<user> filler question {i}", answer="f" * 2_000)

    def broken(*args: object) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "pread", broken)
    assert get(cache, "<user> How do I reset my password?") is None
    assert cache.counters["read_failed"] == 1
    monkeypatch.setattr(BodyLog, "append", broken)
    put(cache, "<user> a new question that cannot be stored", answer="lost")
    assert cache.counters["store_failed"] == 1
    monkeypatch.undo()
    assert get(cache, "<user> a new question that cannot be stored") is None
    assert get(cache, "<user> How do I reset my password?") == "exact:kept"


def test_a_conversation_alone_in_its_partition_needs_no_index_until_a_second_entry(embedder: StaticEmbedder) -> None:
    cache = make(embedder)
    chats = [f"<user> Earlier question {i}\n<assistant> Earlier answer {i}\n<user> How do I reset my password?"
             for i in range(3)]  # fmt: skip
    for i, text in enumerate(chats):
        put(cache, text, answer=str(i))
    assert cache.memory()["single_vectors"] == 3 and cache.memory()["indexes"] == 0
    for i, text in enumerate(chats):  # each conversation finds its own answer, never another's
        assert get(cache, text.replace("How do I", "How can I")) == f"semantic:{i}"
    put(cache, chats[0].replace("reset my password", "change my e-mail address"), answer="mail")
    assert cache.memory()["single_vectors"] == 2 and cache.memory()["indexes"] == 1  # the second built one
    assert get(cache, chats[0].replace("How do I", "How can I")) == "semantic:0"
    assert get(cache, chats[0].replace("reset my password", "change my e-mail address")) == "exact:mail"
    cache.remove(cache.keys(A, an(chats[1]), FP, chats[1]).exact)
    assert cache.memory()["single_vectors"] == 1 and get(cache, chats[1].replace("How do I", "How can I")) is None


def test_a_compaction_that_cannot_read_leaves_the_store_and_the_entries_intact(
    embedder: StaticEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = BodyLog(segment_bytes=64 * 1024)
    cache = SemanticCache(CacheSettings(), embedder.embed, EMBEDDING_DIM, clock=Clock(), body_log=log)
    put(cache, "<user> the pinned question about invoices", answer="pinned")

    def broken(*args: object) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "pread", broken)  # compaction must read the pinned record from its file
    for i in range(3_000):  # each answer stored then dropped: the pinned one's segment is all but released
        text = f"<user> distinct prompt {i} about topic {i * 7}"
        put(cache, text, answer=f"{i} " + "y" * 1_500)  # every store succeeds although compactions fail
        assert cache.remove(cache.keys(A, an(text), FP, text).exact)
    assert cache.counters["compact_failed"] > 0 and cache.counters["log_compactions"] == 0
    put(cache, "<user> the last question", answer="last")
    monkeypatch.undo()
    assert len(cache) == 2
    assert get(cache, "<user> the pinned question about invoices") == "exact:pinned"
    assert get(cache, "<user> the last question") == "exact:last"


def test_neighbours_with_other_numbers_are_ruled_out_without_reading_them(embedder: StaticEmbedder) -> None:
    cache = make(embedder)
    put(cache, "<user> How many apples are in 3 baskets of 12 apples?", answer="36")
    put(cache, "<user> How many apples are in 5 baskets of 12 apples?", answer="60")
    reads: list[int] = []
    read = cache._read

    def counted(row: TableEntry) -> bytes:
        reads.append(row.loc)
        return read(row)

    cache._read = counted  # type: ignore[method-assign]
    assert get(cache, "<user> How many apples are in 4 baskets of 12 apples?") is None
    assert reads == [] and cache.counters["verifier_R1-numbers"] == 2  # both neighbours, neither read
    assert get(cache, "<user> How many apples are there in 5 baskets of 12 apples?") == "semantic:60"
    assert len(reads) == 1  # the hit's record: read once for its signature and its answer


def test_a_turn_too_long_to_verify_is_neither_embedded_nor_searched(embedder: StaticEmbedder) -> None:
    embedded: list[str] = []

    def embed(text: str) -> npt.NDArray[np.float32]:
        embedded.append(text)
        return embedder.embed(text)

    cache = SemanticCache(CacheSettings(), embed, EMBEDDING_DIM)
    long = "<user> " + "Summarise this sentence please. " * 200  # > MAX_VERIFIABLE_CHARS
    put(cache, long)
    put(cache, "<user> Summarise this sentence please.")
    embedded.clear()
    assert get(cache, long + " Thanks.") is None
    assert embedded == [] and cache.counters["semantic_bypass_size"] == 1
    assert get(cache, long) == "exact:x"  # the exact level still serves it
