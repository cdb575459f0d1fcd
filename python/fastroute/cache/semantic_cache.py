"""`SemanticCache`: the two-level response cache (exact key, then embedding + HNSW + verifier) of one replica.

Pure CPU and memory: no network, no asyncio (Redis sharing is `fastroute.cache.replication`, which feeds
`insert_entry` and drains `outbox`). Lookups and stores are synchronous and take microseconds, so the
gateway calls them straight from the event loop.

Memory: per entry the process keeps ~100 bytes of bookkeeping (`fastroute._native.EntryTable`: exact-key
hash, LRU and expiry order, times, ids of its tenant and partition, the digest of its turn's numbers, which
rules most semantic neighbours out without reading them) and its vector inside the HNSW index
(int8 + one scale). The bytes a hit needs (exact key, last user turn for the verifier, the answer's JSON) are appended
to a `BodyLog` (anonymous files, served from the OS page cache). The conversation text, the parsed answer
and the float32 embedding live only in the transient `CacheEntry` that `store` returns and replication
publishes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from fastroute._native import EntryTable, TableEntry, VectorIndex
from fastroute.cache.body_log import BodyLog
from fastroute.cache.keys import exact_key, partition_key, split_conversation
from fastroute.cache.names import NameTable
from fastroute.cache.settings import CacheSettings
from fastroute.cache.types import AnalysisLike, CacheEntry, CacheHit, CacheScope, RequestKeys, Vector
from fastroute.cache.vectors import IndexBatch, WaitingVectors, pack_single, single_id, unpack_single
from fastroute.cache.verifier import MAX_VERIFIABLE_CHARS, Signature, numbers_digest, signature, verify

__all__ = ["SemanticCache"]

log = logging.getLogger("fastroute.cache")
# Per stored entry besides its answer bytes, turn and vector: the table row, the exact key in the body log
# and the index links (measured with benchmarks/load/cache_rss.py).
_ENTRY_OVERHEAD_BYTES = 300
# Verifier signatures of stored entries kept after their first use (an entry that was a candidate once is
# likely to be one again); beyond this many the oldest is dropped and recomputed when needed.
_MAX_KEPT_SIGNATURES = 4096
# (tenant, fingerprint) pairs whose single-turn partition key is kept; beyond this the memo starts over.
_MAX_KEPT_PARTITION_KEYS = 1024
# Released body-log bytes between looks for mostly dead segments to compact.
_COMPACT_EVERY_BYTES = 4 << 20
# Vectors a partition may hold outside its index (deferred inserts); each lookup compares them one by one,
# so beyond this the insert happens at once instead (bursts, e.g. a replica loading from Redis).
_MAX_WAITING = 32


def _key_hash(key: str) -> int:
    # Exact keys are hex digests (`keys.exact_key`); other strings (tests) are hashed the same way.
    try:
        return int(key[:16], 16)
    except ValueError:
        return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


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
        body_dir: where the body log's anonymous segment files are created (None: the temp directory).
        body_log: the log itself, when the caller builds it (tests: small segments); overrides `body_dir`.
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
        body_dir: Path | None = None,
        body_log: BodyLog | None = None,
    ) -> None:
        self.settings = settings
        self.defer_index = defer_index
        self.on_unindexed: Callable[[], None] | None = None  # told when a vector starts waiting (the indexer)
        self._embed = embed
        self._dim = dim
        self._clock = clock
        self.origin = origin
        self._table = EntryTable()
        self._log = body_log or BodyLog(body_dir)
        self._names = NameTable()  # tenants and partitions
        self._sigs: dict[int, Signature] = {}  # stored entries' verifier signatures, by id (bounded)
        # Partition keys of single-turn requests by (tenant, fingerprint) (bounded): two hashes per lookup
        # become one.
        self._first_turn_partitions: dict[tuple[str, str], str] = {}
        self._released = 0  # log bytes released since the last look for sparse segments
        self._indexes: dict[str, VectorIndex] = {}
        # A partition's only vector, int8 + scale, kept without an index until a second entry arrives: in a
        # chat every conversation is its own partition, and an index costs ~1 KB even for one vector.
        self._singles: dict[str, bytes] = {}  # partition -> local id, scale, int8 vector (`vectors.pack_single`)
        # Vectors not yet in their index (queued or being inserted), by partition then local id; and the
        # queue of (partition, local id) not yet taken.
        self._unindexed: dict[str, WaitingVectors] = {}
        self._index_queue: list[tuple[str, int]] = []
        self._vector_bytes = dim + 4  # signed bytes and a scale in the index
        # Replication (fastroute.cache.replication) sets `on_store` and drains `outbox`; without it the
        # outbox stays empty.
        self.outbox: deque[CacheEntry] = deque(maxlen=10_000)
        self.on_store: Callable[[CacheEntry], None] | None = None
        self.counters: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._table)

    @property
    def bytes_used(self) -> int:
        return int(self._table.bytes)

    def memory(self) -> dict[str, int]:
        """Where the cache's bytes are: its table and vector indexes (process memory), its body log (files)."""
        return {
            "entries": len(self._table),
            "table_bytes": int(self._table.memory_bytes),
            "index_bytes": sum(int(index.memory_bytes) for index in self._indexes.values()),
            "indexes": len(self._indexes),
            "single_vectors": len(self._singles),
            "log_file_bytes": self._log.file_bytes,
            "log_live_bytes": self._log.live_bytes,
        }

    # -- keys -----------------------------------------------------------------------------------------

    def keys(self, scope: CacheScope, analysis: AnalysisLike, request_fingerprint: str, text: str) -> RequestKeys:
        """The request's keys; pass them to `lookup` and `store` so they are computed once per request."""
        context, turn = split_conversation(text)
        if context:
            partition = partition_key(scope.tenant, request_fingerprint, context)
        else:  # a single-turn request: its partition depends only on tenant and fingerprint, so it is kept
            partition = self._first_turn_partitions.get((scope.tenant, request_fingerprint), "")
            if not partition:
                partition = partition_key(scope.tenant, request_fingerprint, "")
                if len(self._first_turn_partitions) >= _MAX_KEPT_PARTITION_KEYS:
                    self._first_turn_partitions.clear()
                self._first_turn_partitions[scope.tenant, request_fingerprint] = partition
        return RequestKeys(exact_key(scope.tenant, request_fingerprint, analysis.key), partition, turn)

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
        try:
            return self._lookup(scope, analysis, keys, now)
        except OSError as e:  # the body log cannot be read: a miss, never a failed request
            self.counters["read_failed"] += 1
            log.warning("response cache: cannot read the body log (%s); treated as a miss", e)
            return None

    def _lookup(self, scope: CacheScope, analysis: AnalysisLike, keys: RequestKeys, now: float) -> CacheHit | None:
        local_id = self._table.find(_key_hash(keys.exact))
        row = None if local_id is None else self._table.get(local_id)
        if local_id is not None and row is not None and row.expires > now:
            record = self._read(row)
            if record[: row.key_len] == keys.exact.encode():
                self._table.touch(local_id)
                self.counters["hit_exact"] += 1
                return CacheHit("exact", _answer(record, row), 1.0, keys.exact, now - row.created)
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
        single = self._singles.get(keys.partition) if index is None else None
        if single is None and (index is None or not (len(index) or waiting)):
            return None
        if len(keys.turn) > MAX_VERIFIABLE_CHARS:  # the verifier never passes it (R7): no embedding, no search
            self.counters["semantic_bypass_size"] += 1
            return None
        vector = self._vector(analysis, keys.turn)
        if vector is None:
            return None
        candidates: list[tuple[int, float]] = []
        if single is not None:
            single_id, single_vector = unpack_single(single)
            candidates = [(single_id, float(single_vector @ vector))]
        elif index is not None and len(index):
            # Only candidates above the threshold are served: the search stops soon after finding one.
            candidates = index.search_pairs(vector, s.candidates, s.ef_search, s.similarity)
        if waiting:  # not yet in the index: compared exhaustively (few: at most _MAX_WAITING)
            candidates += waiting.similarities(vector, skip={c[0] for c in candidates})
            candidates.sort(key=itemgetter(1), reverse=True)
            del candidates[s.candidates :]
        query_sig: Signature | None = None
        query_numbers = 0
        tenant = self._names.find(scope.tenant)
        for local_id, sim in candidates:
            if sim < s.similarity:
                break
            row = self._table.get(local_id)
            if row is None or row.expires <= now or row.tenant != tenant:
                continue
            if query_sig is None:
                query_sig = signature(keys.turn)
                query_numbers = query_sig.numbers_digest()
            if row.numbers and query_numbers and row.numbers != query_numbers:
                # Different numbers (what most neighbours fail on): ruled out without reading the entry.
                self.counters["verifier_R1-numbers"] += 1
                continue
            sig, record = self._signature(local_id, row)
            failed = verify(query_sig, sig)
            if failed is not None:
                self.counters[f"verifier_{failed}"] += 1
                continue
            self._table.touch(local_id)
            if record is None:
                record = self._read(row)
            key = record[: row.key_len].decode()
            return CacheHit("semantic", _answer(record, row), float(sim), key, now - row.created)
        return None

    def _signature(self, local_id: int, row: TableEntry) -> tuple[Signature, bytes | None]:
        """The stored entry's verifier signature, and its whole record when it had to be read for it (one
        read serves both the verifier and the answer)."""
        sig = self._sigs.get(local_id)
        if sig is not None:
            return sig, None
        record = self._read(row)
        sig = signature(record[row.key_len : row.key_len + row.turn_len].decode("utf-8", "surrogatepass"))
        if len(self._sigs) >= _MAX_KEPT_SIGNATURES:
            del self._sigs[next(iter(self._sigs))]
        self._sigs[local_id] = sig
        return sig, record

    def _read(self, row: TableEntry) -> bytes:
        """An entry's whole record (key, last user turn, answer) from the body log."""
        return self._log.read(row.loc, _record_length(row))

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
            embedding=self._vector(analysis, keys.turn) if self._searchable(scope) else None,
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

    def _searchable(self, scope: CacheScope) -> bool:
        """Whether the semantic level could ever serve an entry stored for `scope`. Its partition holds only
        requests with the same fingerprint, temperature included, so when that temperature skips the semantic
        level every lookup there does: such an entry gets no vector (no index insert, no embedding replicated),
        only an exact key. Most traffic sends a temperature (OpenAI's default is 1), so this is the common case.
        """
        return self.settings.semantic and scope.temperature <= self.settings.semantic_temperature_max

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
        key_hash = _key_hash(entry.key)
        old = self._table.find(key_hash)
        if old is not None:
            self._remove(old)
        key_bytes, turn_bytes = entry.key.encode(), turn.encode("utf-8", "surrogatepass")
        numbers = numbers_digest(turn) if with_vector else 0
        try:
            loc = self._log.append(key_bytes + turn_bytes + body)
        except OSError as e:  # e.g. a full disk: the answer is not cached, the request is unaffected
            self.counters["store_failed"] += 1
            log.warning("response cache: cannot write the body log (%s); answer not cached", e)
            return False
        local_id, _ = self._table.insert(
            key_hash,
            self._names.acquire(entry.partition),
            self._names.acquire(entry.tenant),
            entry.created,
            entry.expires,
            loc,
            len(key_bytes),
            len(turn_bytes),
            len(body),
            entry.size,
            numbers,
        )
        entry.local_id = local_id
        if with_vector:
            assert entry.embedding is not None
            self._place_vector(entry.partition, local_id, entry.embedding)
        self._evict()
        return True

    def _place_vector(self, partition: str, local_id: int, vector: Vector) -> None:
        """A partition's first vector is kept aside; the second builds its index (the first goes in at once);
        later ones wait for the background indexer, or go in at once without one."""
        index = self._indexes.get(partition)
        if index is None:
            single = self._singles.pop(partition, None)
            if single is None:
                self._singles[partition] = pack_single(local_id, vector)
                return
            index = VectorIndex(self._dim, 16, 100, max(self.settings.max_entries * 2, 16), int8=True)
            self._indexes[partition] = index
            single_id, single_vector = unpack_single(single)
            index.add(np.array([single_id], dtype=np.uint64), single_vector.reshape(1, -1))
        waiting = self._unindexed.get(partition) if self.defer_index else None
        if self.defer_index and waiting is None:
            waiting = WaitingVectors(self._dim)
        if waiting is not None and len(waiting) < _MAX_WAITING:
            self._unindexed[partition] = waiting
            waiting.add(local_id, vector)
            self._index_queue.append((partition, local_id))
            if self.on_unindexed is not None:
                self.on_unindexed()
        else:
            index.add(np.array([local_id], dtype=np.uint64), vector.reshape(1, -1))

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
                jobs.append((partition, index, tuple(ids), waiting.take(ids)))
        return IndexBatch(tuple(jobs)) if jobs else None

    def finish_index_batch(self, batch: IndexBatch) -> None:
        """After `batch.run()`: the vectors are searchable through the index; entries removed meanwhile
        are deleted from it again."""
        for partition, index, ids, _ in batch.jobs:
            waiting = self._unindexed.get(partition)
            if waiting is not None:
                for local_id in ids:
                    waiting.discard(local_id)
                if not waiting:
                    del self._unindexed[partition]
            for local_id in ids:
                if self._table.get(local_id) is None:
                    index.delete(local_id)
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

    def remove(self, key: str) -> bool:
        """Drops the entry stored under this exact key (e.g. an answer found wrong); False if none."""
        local_id = self._table.find(_key_hash(key))
        if local_id is None:
            return False
        self._remove(local_id)
        return True

    def _remove(self, local_id: int) -> None:
        row = self._table.remove(local_id)
        if row is None:
            return
        self._sigs.pop(local_id, None)
        length = _record_length(row)
        self._log.release(row.loc, length)
        self._released += length
        partition = self._names.name(row.partition)
        single = self._singles.get(partition)
        if single is not None and single_id(single) == local_id:
            del self._singles[partition]
        index = self._indexes.get(partition)
        waiting = self._unindexed.get(partition)
        if waiting is not None and local_id in waiting:
            # Queued: never inserted. Being inserted: finish_index_batch deletes it once it is in.
            waiting.discard(local_id)
            if not waiting:
                del self._unindexed[partition]
        elif index is not None:
            index.delete(local_id)
        if index is not None and len(index) == 0 and partition not in self._unindexed:
            del self._indexes[partition]
        self._names.release(row.partition)
        self._names.release(row.tenant)

    def _evict(self) -> None:
        s = self.settings
        table = self._table
        while len(table) and (len(table) > s.max_entries or table.bytes > s.max_bytes):
            oldest = table.oldest()
            assert oldest is not None
            self._remove(oldest)
            self.counters["evicted"] += 1
        if self._released > _COMPACT_EVERY_BYTES:
            self._released = 0
            self._compact()

    def _compact(self) -> None:
        """Moves the live records of mostly released log segments to the head, so those files go."""
        try:
            for lo, hi in self._log.sparse_segments():
                for local_id in self._table.ids_in(lo, hi):
                    row = self._table.get(local_id)
                    assert row is not None
                    self._table.relocate(local_id, self._log.append(self._read(row)))
                    self._log.release(row.loc, _record_length(row))
                self.counters["log_compactions"] += 1
        except OSError as e:  # what was moved stays consistent; the rest waits for the next compaction
            self.counters["compact_failed"] += 1
            log.warning("response cache: cannot compact the body log (%s)", e)

    def _expire(self, now: float) -> None:
        while (local_id := self._table.pop_expired(now)) is not None:
            self._remove(local_id)
            self.counters["expired"] += 1

    def clear(self) -> None:
        self._table.clear()
        self._log.clear()
        self._names.clear()
        self._sigs.clear()
        self._released = 0
        self._indexes.clear()
        self._singles.clear()
        self._unindexed.clear()
        self._index_queue.clear()

    def close(self) -> None:
        """Drops every entry and deletes the body log's files."""
        self.clear()
        self._log.close()


def _record_length(row: TableEntry) -> int:
    return row.key_len + row.turn_len + row.body_len


def _answer(record: bytes, row: TableEntry) -> dict[str, Any]:
    """The cached response body of a record read with `SemanticCache._read`."""
    body: dict[str, Any] = orjson.loads(record[row.key_len + row.turn_len :])
    return body


def _json_bytes(body: dict[str, Any]) -> bytes:
    # orjson returns its output in a buffer of at least ~8 KB; kept as is, a 1 KB answer would hold 8 KB.
    return memoryview(orjson.dumps(body)).tobytes()
