"""Redis sharing: entries stored by one replica are served by another, a restarted one and another process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fastroute._native import StaticEmbedder, normalize_key
from fastroute.cache import CacheScope, CacheSettings, SemanticCache, fingerprint_request
from fastroute.cache.replication import RedisReplication, entry_from_json, entry_to_json
from fastroute.embedding import EMBEDDING_DIM, load_embedder
from tests.fakes.redis_server import redis_url

__all__ = ["redis_url"]
ROOT = Path(__file__).resolve().parents[3]
FP = fingerprint_request({"model": "m"})
A = CacheScope("app-a")


@dataclass(frozen=True)
class Analysis:
    key: str
    embedding: None = None


@pytest.fixture(scope="module")
def embedder() -> StaticEmbedder:
    return load_embedder(ROOT / "models")


def new_cache(embedder: StaticEmbedder) -> SemanticCache:
    return SemanticCache(CacheSettings(), embedder.embed, EMBEDDING_DIM)


async def eventually_hit(cache: SemanticCache, text: str, scope: CacheScope = A, wait_s: float = 5.0) -> str:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        hit = cache.lookup(scope, Analysis(normalize_key(text)), FP, text)
        if hit is not None:
            return f"{hit.kind}:{hit.body['answer']}"
        if asyncio.get_running_loop().time() > deadline:
            return "miss"
        await asyncio.sleep(0.02)


def test_entry_json_round_trip(embedder: StaticEmbedder) -> None:
    cache = new_cache(embedder)
    entry = cache.store(A, Analysis("k"), FP, "<user> hello there", {"answer": "hi", "n": [1, 2]})
    assert entry is not None
    again = entry_from_json(entry_to_json(entry))
    assert again.key == entry.key and again.body == entry.body and again.partition == entry.partition
    assert again.embedding is not None and entry.embedding is not None
    assert np.array_equal(again.embedding, entry.embedding)


async def test_two_replicas_share_entries_and_restart_reloads(redis_url: str, embedder: StaticEmbedder) -> None:
    one, two = new_cache(embedder), new_cache(embedder)
    rep1 = RedisReplication(one, redis_url, "t")
    rep2 = RedisReplication(two, redis_url, "t")
    await rep1.start()
    await rep2.start()
    try:
        one.store(
            A,
            Analysis(normalize_key("<user> How do I reset my password?")),
            FP,
            "<user> How do I reset my password?",
            {"answer": "from-one"},
        )
        assert await eventually_hit(two, "<user> How can I reset my password?") == "semantic:from-one"
        assert await eventually_hit(two, "<user> How can I reset my password?", CacheScope("app-b"), 0.3) == "miss"
        assert rep2.received == 1 and rep1.received == 0  # nobody re-inserts its own entries
    finally:
        await rep1.close()
        await rep2.close()
    restarted = new_cache(embedder)
    rep3 = RedisReplication(restarted, redis_url, "t")
    await rep3.start()
    try:
        assert rep3.loaded == 1
        assert await eventually_hit(restarted, "<user> How do I reset my password?", wait_s=0.5) == "exact:from-one"
    finally:
        await rep3.close()


_CHILD = """
import asyncio, sys
from dataclasses import dataclass
from pathlib import Path
from fastroute._native import normalize_key
from fastroute.cache import CacheScope, CacheSettings, SemanticCache, fingerprint_request
from fastroute.cache.replication import RedisReplication
from fastroute.embedding import EMBEDDING_DIM, load_embedder

@dataclass(frozen=True)
class Analysis:
    key: str
    embedding: None = None

async def main() -> None:
    cache = SemanticCache(CacheSettings(), load_embedder(Path(sys.argv[2])).embed, EMBEDDING_DIM)
    rep = RedisReplication(cache, sys.argv[1], "t")
    await rep.start()
    text = "<user> What is the tallest mountain on Earth?"
    cache.store(CacheScope("app-a"), Analysis(normalize_key(text)), fingerprint_request({"model": "m"}), text,
                {"answer": "from-child"})
    await rep.close()  # flushes the outbox

asyncio.run(main())
"""


async def test_entries_from_another_process_are_visible(redis_url: str, embedder: StaticEmbedder) -> None:
    cache = new_cache(embedder)
    rep = RedisReplication(cache, redis_url, "t")
    await rep.start()
    try:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT)])}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD, redis_url, str(ROOT / "models"), env=env, stderr=subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        got = await eventually_hit(cache, "<user> What's the tallest mountain on Earth?")
        assert got == "semantic:from-child"
    finally:
        await rep.close()


async def test_unreachable_redis_keeps_the_local_cache_working(embedder: StaticEmbedder) -> None:
    cache = new_cache(embedder)
    rep = RedisReplication(cache, "redis://127.0.0.1:9/0", "t")
    await rep.start()
    try:
        cache.store(A, Analysis("k2"), FP, "<user> local only", {"answer": "local"})
        await asyncio.sleep(0.1)  # the publisher fails and retries in the background
        hit = cache.lookup(A, Analysis("k2"), FP, "<user> local only")
        assert hit is not None and hit.body["answer"] == "local"
    finally:
        await rep.close()
