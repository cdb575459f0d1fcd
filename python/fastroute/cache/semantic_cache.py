"""`SemanticCache`: the two-level response cache (exact key, then embedding + HNSW + verifier) of one replica.

Pure CPU and memory: no network, no asyncio (Redis sharing is `fastroute.cache.replication`, which feeds
`insert_entry` and drains `outbox`). Lookups and stores are synchronous and take microseconds, so the
gateway calls them straight from the event loop.

Memory: a stored entry keeps only what a lookup needs: the answer as its JSON bytes (decoded on a hit),
the last user turn (for the verifier), keys, times, and its vector inside the HNSW index (f16). The
conversation text, the parsed answer and the float32 embedding live only in the transient `CacheEntry`
that `store` returns and replication publishes.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import orjson

from fastroute._native import VectorIndex
from fastroute.cache.keys import exact_key, partition_key, split_conversation
from fastroute.cache.settings import CacheSettings
from fastroute.cache.verifier import Signature, signature, verify

__all__ = ["AnalysisLike", "CacheEntry", "CacheHit", "CacheScope", "IndexBatch", "RequestKeys", "SemanticCache"]

Vector = npt.NDArray[np.float32]
# Per stored entry besides its answer bytes, turn and vector: the record, its key strings, the LRU and id
# maps, the expiry heap row and the index links (measured with benchmarks/load/cache_rss.py).
_ENTRY_OVERHEAD_BYTES = 900
# Vectors a partition may hold outside its index (deferred inserts); each lookup compares them one by one,
# so beyond this the insert happens at once instead (bursts, e.g. a replica loading from Redis).
_MAX_WAITING = 32


class AnalysisLike(Protocol):
    """What the cache needs from `fastroute.native.PromptAnalysis`."""

    @property
    def key(self) -> str: ...

    @property
    def embedding(self) -> Vector | None: ...


@dataclass(frozen=True, slots=True)
class CacheScope:
    """Who asks and how: entries never cross tenants, and the semantic level may be switched off.

    Attributes:
        tenant: isolation unit (application, or department when the policy says so).
        temperature: the request's temperature; above `semantic_temperature_max` only exact hits are served.
        semantic: False when the policy allows only exact hits.
    """

    tenant: str
    temperature: float = 0.0
    semantic: bool = True


@dataclass(frozen=True, slots=True)
class CacheHit:
    """A cached answer that may be served. `body` is the stored response; do not mutate it."""

    kind: Literal["exact", "semantic"]
    body: dict[str, Any]
    similarity: float
    entry_key: str
    age_s: float


@dataclass(slots=True)
class CacheEntry:
    """One answer as produced by `store` or received from another replica (the replication wire shape).

    `key` is the exact key; `origin` names the replica that produced it. The cache itself keeps a compact
    record (`_Stored`), not this object.
    """

    key: str
    tenant: str
    fingerprint: str
    partition: str
    text: str
    body: dict[str, Any]
    embedding: Vector | None
    created: float
    expires: float
    origin: str = ""
    size: int = 0
    local_id: int = 0
    sig: Signature | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class RequestKeys:
    """A request's cache keys, computed once by `SemanticCache.keys` and reused by `lookup` and `store`.

    Attributes:
        exact: the exact-level key (tenant, fingerprint, normalised conversation).
        partition: the semantic level's neighbourhood (tenant, fingerprint, earlier turns).
        turn: the last user turn (what is embedded and verified).
    """

    exact: str
    partition: str
    turn: str


@dataclass(frozen=True, slots=True)
class IndexBatch:
    """Vectors waiting for their partition's HNSW index, taken by `SemanticCache.take_index_batch`.

    `run` may be called from any thread (the index releases the GIL and locks itself); afterwards the
    owner of the cache calls `finish_index_batch` on the cache's thread.
    """

    jobs: tuple[tuple[str, VectorIndex, tuple[int, ...], Vector], ...]  # partition, index, ids, vectors

    def __len__(self) -> int:
        return sum(len(ids) for _, _, ids, _ in self.jobs)

    def run(self) -> None:
        """Inserts every vector, one at a time so searches are never locked out for a whole batch."""
        for _, index, ids, vectors in self.jobs:
            for row, local_id in enumerate(ids):
                index.add(np.array([local_id], dtype=np.uint64), vectors[row : row + 1])


class _Stored:
    """The compact record the cache keeps per entry (no dict, no parsed answer, no numpy vector)."""

    __slots__ = ("body", "created", "expires", "key", "local_id", "partition", "sig", "tenant", "turn")

    def __init__(
        self, key: str, tenant: str, partition: str, turn: str, body: bytes, created: float, expires: float
    ) -> None:
        self.key = key
        self.tenant = tenant
        self.partition = partition
        self.turn = turn
        self.body = body
        self.created = created
        self.expires = expires
        self.local_id = 0
        self.sig: Signature | None = None  # computed on first use: most entries are never a candidate


class SemanticCache:
    """Exact + semantic response cache with TTL, LRU eviction by entries and bytes, per-tenant isolation.

    Args:
        settings: thresholds, TTL and bounds.
        embed: text -> unit float32 vector (e.g. `fastroute.embedding.load_embedder(...).embed`), used only
            when the analysis carries no embedding; None disables the semantic level for such requests.
        dim: the embedding dimension.
        clock: wall-clock seconds (wall, not monotonic: expiry times are shared across replicas).
        origin: this replica's name, stamped on entries it produces.
        defer_index: when True, `store` leaves HNSW inserts (hundreds of microseconds at 100k entries) to
            whoever drains `take_index_batch` (`fastroute.cache.indexer.BackgroundIndexer`, off the event
            loop); until then lookups search the waiting vectors exhaustively, so nothing is missed.
    """

    def __init__(
        self,
        settings: CacheSettings,
        embed: Callable[[str], Vector] | None,
        dim: int,
        *,
        clock: Callable[[], float] = time.time,
        origin: str = "local",
        defer_index: bool = False,
    ) -> None:
        self.settings = settings
        self.defer_index = defer_index
        self.on_unindexed: Callable[[], None] | None = None  # told when a vector starts waiting (the indexer)
        self._embed = embed
        self._dim = dim
        self._clock = clock
        self.origin = origin
        self._entries: OrderedDict[str, _Stored] = OrderedDict()
        self._by_id: dict[int, _Stored] = {}
        self._indexes: dict[str, VectorIndex] = {}
        # Vectors not yet in their index (queued or being inserted), by partition then local id; and the
        # queue of (partition, local id) not yet taken.
        self._unindexed: dict[str, dict[int, Vector]] = {}
        self._index_queue: list[tuple[str, int]] = []
        self._expiry: list[tuple[float, int]] = []  # heap of (expires, local_id)
        self._ids = itertools.count(1)
        self._bytes = 0
        self._vector_bytes = dim * 2  # f16 in the index
        # Replication (fastroute.cache.replication) sets `on_store` and drains `outbox`; without it the
        # outbox stays empty.
        self.outbox: deque[CacheEntry] = deque(maxlen=10_000)
        self.on_store: Callable[[CacheEntry], None] | None = None
        self.counters: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        return self._bytes

    # -- keys -----------------------------------------------------------------------------------------

    @staticmethod
    def keys(scope: CacheScope, analysis: AnalysisLike, request_fingerprint: str, text: str) -> RequestKeys:
        """The request's keys; pass them to `lookup` and `store` so they are computed once per request."""
        context, turn = split_conversation(text)
        return RequestKeys(
            exact_key(scope.tenant, request_fingerprint, analysis.key),
            partition_key(scope.tenant, request_fingerprint, context),
            turn,
        )

    # -- lookup -------------------------------------------------------------------------------------

    def lookup(
        self,
        scope: CacheScope,
        analysis: AnalysisLike,
        request_fingerprint: str,
        text: str,
        keys: RequestKeys | None = None,
    ) -> CacheHit | None:
        """The cached answer for this request, or None (a miss). Never serves another tenant's entry.

        Args:
            scope: tenant and request temperature.
            analysis: the prompt analysis (`.key` is the normalised whole conversation, `.embedding` the
                last user turn's embedding, reused when present).
            request_fingerprint: `fingerprint_request(body)`: model/tier and answer-changing parameters.
            text: the conversation text the analysis was made from (the verifier reads it).
            keys: `keys(scope, analysis, request_fingerprint, text)` if already computed.
        """
        if not self.settings.enabled:
            return None
        now = self._clock()
        self._expire(now)
        if keys is None:
            keys = self.keys(scope, analysis, request_fingerprint, text)
        entry = self._entries.get(keys.exact)
        if entry is not None and entry.expires > now:
            self._entries.move_to_end(entry.key)
            self.counters["hit_exact"] += 1
            return CacheHit("exact", orjson.loads(entry.body), 1.0, entry.key, now - entry.created)
        hit = self._semantic_lookup(scope, analysis, keys, now)
        self.counters["hit_semantic" if hit else "miss"] += 1
        return hit

    def _vector(self, analysis: AnalysisLike, turn: str) -> Vector | None:
        # The analysis embeds the same last user turn (rust/src/analyze.rs `last_user_turn`): reuse it.
        if analysis.embedding is not None and len(analysis.embedding) == self._dim:
            return analysis.embedding
        return self._embed(turn) if self._embed is not None else None

    def _semantic_lookup(
        self, scope: CacheScope, analysis: AnalysisLike, keys: RequestKeys, now: float
    ) -> CacheHit | None:
        s = self.settings
        if not (s.semantic and scope.semantic):
            return None
        if scope.temperature > s.semantic_temperature_max:
            self.counters["semantic_bypass_temperature"] += 1
            return None
        index = self._indexes.get(keys.partition)
        waiting = self._unindexed.get(keys.partition)
        if index is None or not (len(index) or waiting):
            return None
        vector = self._vector(analysis, keys.turn)
        if vector is None:
            return None
        candidates: list[tuple[int, float]] = []
        if len(index):
            ids, sims = index.search(vector, s.candidates, s.ef_search)
            candidates = list(zip(ids.tolist(), sims.tolist(), strict=True))
        if waiting:  # not yet in the index: compared one by one (few: the indexer keeps up)
            seen = {c[0] for c in candidates}
            candidates += [(i, float(v @ vector)) for i, v in waiting.items() if i not in seen]
            candidates.sort(key=lambda c: -c[1])
            del candidates[s.candidates :]
        query_sig: Signature | None = None
        for local_id, sim in candidates:
            if sim < s.similarity:
                break
            entry = self._by_id.get(local_id)
            if entry is None or entry.expires <= now or entry.tenant != scope.tenant:
                continue
            if query_sig is None:
                query_sig = signature(keys.turn)
            if entry.sig is None:
                entry.sig = signature(entry.turn)
            failed = verify(query_sig, entry.sig)
            if failed is not None:
                self.counters[f"verifier_{failed}"] += 1
                continue
            self._entries.move_to_end(entry.key)
            return CacheHit("semantic", orjson.loads(entry.body), float(sim), entry.key, now - entry.created)
        return None

    # -- store ----------------------------------------------------------------------------------------

    def store(
        self,
        scope: CacheScope,
        analysis: AnalysisLike,
        request_fingerprint: str,
        text: str,
        response_body: dict[str, Any],
        keys: RequestKeys | None = None,
    ) -> CacheEntry | None:
        """Keeps `response_body` as the answer to this request (and queues it for replication).

        Returns the entry, or None when caching is off or the entry alone exceeds `max_bytes`.
        """
        if not self.settings.enabled:
            return None
        now = self._clock()
        if keys is None:
            keys = self.keys(scope, analysis, request_fingerprint, text)
        entry = CacheEntry(
            key=keys.exact,
            tenant=scope.tenant,
            fingerprint=request_fingerprint,
            partition=keys.partition,
            text=text,
            body=response_body,
            embedding=self._vector(analysis, keys.turn),
            created=now,
            expires=now + self.settings.ttl_s,
            origin=self.origin,
        )
        if not self._insert(entry, keys.turn, _json_bytes(response_body), now):
            return None
        if self.on_store is not None:
            self.outbox.append(entry)
            self.on_store(entry)
        return entry

    def insert_entry(self, entry: CacheEntry) -> bool:
        """Adds a fully built entry (from another replica); False if expired or too big."""
        return self._insert(entry, split_conversation(entry.text)[1], _json_bytes(entry.body), self._clock())

    def _insert(self, entry: CacheEntry, turn: str, body: bytes, now: float) -> bool:
        if entry.expires <= now:
            return False
        with_vector = entry.embedding is not None and self.settings.semantic
        entry.size = self._size(len(body), turn, with_vector)
        if entry.size > self.settings.max_bytes:
            return False
        old = self._entries.get(entry.key)
        if old is not None:
            self._remove(old)
        stored = _Stored(
            entry.key,
            sys.intern(entry.tenant),  # one string per tenant / partition, freed with its last entry
            sys.intern(entry.partition),
            turn,
            body,
            entry.created,
            entry.expires,
        )
        stored.local_id = entry.local_id = next(self._ids)
        self._entries[entry.key] = stored
        self._by_id[stored.local_id] = stored
        self._bytes += entry.size
        heapq.heappush(self._expiry, (stored.expires, stored.local_id))
        if with_vector:
            assert entry.embedding is not None
            index = self._indexes.get(stored.partition)
            if index is None:
                index = VectorIndex(self._dim, 16, 100, max(self.settings.max_entries * 2, 16), half=True)
                self._indexes[stored.partition] = index
            waiting = self._unindexed.get(stored.partition, {}) if self.defer_index else None
            if waiting is not None and len(waiting) < _MAX_WAITING:
                self._unindexed[stored.partition] = waiting
                waiting[stored.local_id] = entry.embedding
                self._index_queue.append((stored.partition, stored.local_id))
                if self.on_unindexed is not None:
                    self.on_unindexed()
            else:
                index.add(np.array([stored.local_id], dtype=np.uint64), entry.embedding.reshape(1, -1))
        self._evict()
        return True

    # -- deferred indexing ------------------------------------------------------------------------

    @property
    def unindexed(self) -> int:
        """Vectors stored but not yet in their index (searched exhaustively until they are)."""
        return sum(len(w) for w in self._unindexed.values())

    def take_index_batch(self) -> IndexBatch | None:
        """The queued vectors of live entries, grouped by index; None when nothing waits."""
        queue, self._index_queue = self._index_queue, []
        grouped: dict[str, list[int]] = {}
        for partition, local_id in queue:
            if local_id in self._unindexed.get(partition, ()):
                grouped.setdefault(partition, []).append(local_id)
        jobs = []
        for partition, ids in grouped.items():
            index = self._indexes.get(partition)
            if index is not None:
                waiting = self._unindexed[partition]
                jobs.append((partition, index, tuple(ids), np.stack([waiting[i] for i in ids])))
        return IndexBatch(tuple(jobs)) if jobs else None

    def finish_index_batch(self, batch: IndexBatch) -> None:
        """After `batch.run()`: the vectors are searchable through the index; entries removed meanwhile
        are deleted from it again."""
        for partition, index, ids, _ in batch.jobs:
            waiting = self._unindexed.get(partition, {})
            for local_id in ids:
                waiting.pop(local_id, None)
                if local_id not in self._by_id:
                    index.delete(local_id)
            if not waiting:
                self._unindexed.pop(partition, None)
            if len(index) == 0 and self._indexes.get(partition) is index and partition not in self._unindexed:
                del self._indexes[partition]

    def flush_index(self) -> None:
        """Indexes every waiting vector now, on this thread."""
        while (batch := self.take_index_batch()) is not None:
            batch.run()
            self.finish_index_batch(batch)

    def _size(self, body_len: int, turn: str, with_vector: bool) -> int:
        return body_len + len(turn) + (self._vector_bytes if with_vector else 0) + _ENTRY_OVERHEAD_BYTES

    # -- bounds ---------------------------------------------------------------------------------------

    def _remove(self, entry: _Stored) -> None:
        self._entries.pop(entry.key, None)
        self._by_id.pop(entry.local_id, None)
        index = self._indexes.get(entry.partition)
        waiting = self._unindexed.get(entry.partition)
        if waiting is not None and entry.local_id in waiting:
            # Queued: never inserted. Being inserted: finish_index_batch deletes it once it is in.
            del waiting[entry.local_id]
            if not waiting:
                del self._unindexed[entry.partition]
            had_vector = True
        else:
            had_vector = index is not None and index.delete(entry.local_id)
        self._bytes -= self._size(len(entry.body), entry.turn, had_vector)
        if index is not None and len(index) == 0 and entry.partition not in self._unindexed:
            del self._indexes[entry.partition]

    def _evict(self) -> None:
        s = self.settings
        if len(self._expiry) > 2 * len(self._entries) + 1024:
            self._expiry = [r for r in self._expiry if r[1] in self._by_id]
            heapq.heapify(self._expiry)
        while self._entries and (len(self._entries) > s.max_entries or self._bytes > s.max_bytes):
            _, oldest = self._entries.popitem(last=False)
            self._entries[oldest.key] = oldest  # _remove pops it again with the rest of its bookkeeping
            self._remove(oldest)
            self.counters["evicted"] += 1

    def _expire(self, now: float) -> None:
        # Records of replaced or evicted entries stay in the heap and are skipped here.
        while self._expiry and self._expiry[0][0] <= now:
            _, local_id = heapq.heappop(self._expiry)
            entry = self._by_id.get(local_id)
            if entry is not None:
                self._remove(entry)
                self.counters["expired"] += 1

    def clear(self) -> None:
        self._entries.clear()
        self._by_id.clear()
        self._indexes.clear()
        self._unindexed.clear()
        self._index_queue.clear()
        self._expiry.clear()
        self._bytes = 0


def _json_bytes(body: dict[str, Any]) -> bytes:
    # orjson returns its output in a buffer of at least ~8 KB; kept as is, a 1 KB answer would hold 8 KB.
    return memoryview(orjson.dumps(body)).tobytes()
