"""`RedisReplication`: shares a replica's cache entries through Redis so every replica can serve them.

Owns the network side of the cache (redis.asyncio); `SemanticCache` stays pure and local. Each entry is a
Redis string `{prefix}:e:{key}` (JSON, expiring with the entry) and its key is appended to the stream
`{prefix}:log`. A replica loads the stream at start (surviving its own restart and learning what others
cached), then follows it with XREAD and inserts entries made by other replicas into its local index.
Redis being unreachable never fails a request: the cache keeps working locally and replication retries.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any

import numpy as np
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from fastroute.cache.semantic_cache import SemanticCache
from fastroute.cache.types import CacheEntry

__all__ = ["RedisReplication", "entry_from_json", "entry_to_json"]

log = logging.getLogger(__name__)
_BATCH = 256


def entry_to_json(entry: CacheEntry) -> bytes:
    emb = None if entry.embedding is None else base64.b64encode(entry.embedding.astype("<f4").tobytes()).decode()
    return orjson.dumps(
        {
            "key": entry.key,
            "tenant": entry.tenant,
            "fingerprint": entry.fingerprint,
            "partition": entry.partition,
            "text": entry.text,
            "body": entry.body,
            "embedding": emb,
            "created": entry.created,
            "expires": entry.expires,
            "origin": entry.origin,
        }
    )


def entry_from_json(raw: bytes) -> CacheEntry:
    d: dict[str, Any] = orjson.loads(raw)
    emb = d.get("embedding")
    vector = None if emb is None else np.frombuffer(base64.b64decode(emb), dtype="<f4").astype(np.float32)
    return CacheEntry(
        key=str(d["key"]),
        tenant=str(d["tenant"]),
        fingerprint=str(d["fingerprint"]),
        partition=str(d["partition"]),
        text=str(d["text"]),
        body=dict(d["body"]),
        embedding=vector,
        created=float(d["created"]),
        expires=float(d["expires"]),
        origin=str(d.get("origin", "")),
    )


class RedisReplication:
    """Mirrors `cache`'s new entries to Redis and other replicas' entries into `cache`.

    Args:
        cache: this replica's cache; its `origin` is set to a unique replica name.
        url: `FASTROUTE_REDIS_URL`.
        prefix: key prefix (`CacheSettings.redis_prefix`).
        max_log: stream length kept (approximate trim), normally the cache's `max_entries`.
    """

    def __init__(self, cache: SemanticCache, url: str, prefix: str, *, max_log: int | None = None) -> None:
        self.cache = cache
        cache.origin = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # redis-py's annotations are unions of RESP2/RESP3 shapes; results are handled as bytes here.
        self._redis: Any = aioredis.Redis.from_url(url)
        self._prefix = prefix
        self._log_key = f"{prefix}:log"
        self._max_log = max_log or cache.settings.max_entries
        self._last_id = "0-0"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.loaded = 0
        self.received = 0
        self.published = 0

    def _entry_key(self, key: str) -> str:
        return f"{self._prefix}:e:{key}"

    async def start(self) -> None:
        """Loads the entries already in Redis, then follows new ones and publishes local ones."""
        try:
            await self._load()
        except (RedisError, OSError) as e:
            log.warning("cache replication: initial load failed (%s); continuing with a local cache", e)
        self.cache.on_store = lambda _entry: self._wake.set()
        self._tasks = [asyncio.create_task(self._publish_loop()), asyncio.create_task(self._follow_loop())]

    async def close(self) -> None:
        self.cache.on_store = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._flush()
        await self._redis.aclose()

    async def _load(self) -> None:
        start = "-"
        while True:
            rows = await self._redis.xrange(self._log_key, min=start, max="+", count=_BATCH)
            if not rows:
                return
            keys = [fields[b"k"].decode() for _, fields in rows]
            await self._insert_keys(keys, count_as="loaded")
            last = rows[-1][0].decode()
            self._last_id = last
            start = "(" + last

    async def _insert_keys(self, keys: list[str], *, count_as: str) -> None:
        payloads = await self._redis.mget([self._entry_key(k) for k in keys])
        for raw in payloads:
            if raw is None:
                continue  # expired in Redis
            try:
                entry = entry_from_json(raw)
            except (ValueError, KeyError, TypeError) as e:
                log.warning("cache replication: skipping a malformed entry (%s)", e)
                continue
            if entry.origin == self.cache.origin:
                continue  # our own, already in the local cache (or evicted from it on purpose)
            if self.cache.insert_entry(entry):
                setattr(self, count_as, getattr(self, count_as) + 1)

    async def _flush(self) -> None:
        outbox = self.cache.outbox
        while outbox:
            pipe = self._redis.pipeline(transaction=False)
            now = time.time()
            for _ in range(min(len(outbox), _BATCH)):
                entry = outbox.popleft()
                ttl_ms = int((entry.expires - now) * 1000)
                if ttl_ms <= 0:
                    continue
                pipe.set(self._entry_key(entry.key), entry_to_json(entry), px=ttl_ms)
                pipe.xadd(self._log_key, {"k": entry.key}, maxlen=self._max_log, approximate=True)
                self.published += 1
            await pipe.execute()

    async def _publish_loop(self) -> None:
        delay = 0.1
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
                delay = 0.1
            except (RedisError, OSError) as e:
                log.warning("cache replication: publish failed (%s); retrying", e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._wake.set()

    async def _follow_loop(self) -> None:
        delay = 0.1
        while True:
            try:
                got = await self._redis.xread({self._log_key: self._last_id}, count=_BATCH, block=1000)
                for _, rows in got:
                    if not rows:
                        continue
                    self._last_id = rows[-1][0].decode()
                    await self._insert_keys([fields[b"k"].decode() for _, fields in rows], count_as="received")
                delay = 0.1
            except (RedisError, OSError) as e:
                log.warning("cache replication: follow failed (%s); retrying", e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
