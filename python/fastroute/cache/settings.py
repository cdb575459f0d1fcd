"""`CacheSettings`: the response cache's knobs, read once from `FASTROUTE_CACHE_*` variables.

Pure: reads only the mapping it is given (the lead's `Settings.from_env` passes `os.environ`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastroute.env_values import Env, env_bool, env_float, env_int, env_opt_str

__all__ = ["CacheSettings"]


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """How the response cache behaves.

    Attributes:
        enabled: master switch (`FASTROUTE_CACHE_ENABLED`); a policy can still turn it off per tenant.
        similarity: minimum inner product between unit embeddings for a semantic candidate
            (`FASTROUTE_CACHE_SIMILARITY`); tuned on the development set for the shipped table: at 0.90
            the only wrong-entry hits left were near-duplicate cached prompts of the same meaning.
        semantic: whether the semantic level runs at all (`FASTROUTE_CACHE_SEMANTIC`).
        ttl_s: entry lifetime in seconds (`FASTROUTE_CACHE_TTL_S`).
        max_entries: entries kept per replica before LRU eviction (`FASTROUTE_CACHE_MAX_ENTRIES`).
        max_bytes: approximate bytes kept per replica before LRU eviction, answers in the body-log files
            plus vectors and bookkeeping in memory (`FASTROUTE_CACHE_MAX_BYTES`).
        semantic_temperature_max: requests with a higher temperature skip the semantic level
            (`FASTROUTE_CACHE_SEMANTIC_TEMPERATURE_MAX`); exact hits are still served.
        candidates: nearest neighbours checked by the verifier per lookup (`FASTROUTE_CACHE_CANDIDATES`).
        ef_search: HNSW search breadth (`FASTROUTE_CACHE_EF_SEARCH`). At 100k entries ef 16 found the exact
            nearest cached prompt for 99.2 % of queries with a neighbour above 0.85 (ef 48: 99.65 %) in
            half the time; a missed neighbour is only a cache miss. Once the search has found a candidate
            above `similarity` it stops walking entries far below it (rust/src/hnsw/near.rs): the same
            candidates above the threshold, sooner.
        indexer_idle: HNSW inserts run in a thread at idle CPU priority, so they never delay the event loop
            on a shared core (`FASTROUTE_CACHE_INDEXER_IDLE`; see `BackgroundIndexer`).
        redis_url: with a URL, entries live in Redis and replicas share them (`FASTROUTE_REDIS_URL`).
        redis_prefix: key prefix in Redis (`FASTROUTE_CACHE_REDIS_PREFIX`).
    """

    enabled: bool = True
    similarity: float = 0.90
    semantic: bool = True
    ttl_s: float = 86_400.0
    max_entries: int = 100_000
    max_bytes: int = 256 * 1024 * 1024
    semantic_temperature_max: float = 0.0
    candidates: int = 4
    ef_search: int = 16
    indexer_idle: bool = True
    redis_url: str | None = field(default=None, repr=False)
    redis_prefix: str = "fastroute:cache"

    @classmethod
    def from_env(cls, env: Env) -> CacheSettings:
        d = cls()  # defaults (with slots=True, `cls.field` is a member descriptor, not the default)
        return cls(
            enabled=env_bool(env, "FASTROUTE_CACHE_ENABLED", d.enabled),
            similarity=env_float(env, "FASTROUTE_CACHE_SIMILARITY", d.similarity, minimum=0.0, maximum=1.0),
            semantic=env_bool(env, "FASTROUTE_CACHE_SEMANTIC", d.semantic),
            ttl_s=env_float(env, "FASTROUTE_CACHE_TTL_S", d.ttl_s, minimum=1.0),
            max_entries=env_int(env, "FASTROUTE_CACHE_MAX_ENTRIES", d.max_entries, minimum=1),
            max_bytes=env_int(env, "FASTROUTE_CACHE_MAX_BYTES", d.max_bytes, minimum=1024),
            semantic_temperature_max=env_float(
                env, "FASTROUTE_CACHE_SEMANTIC_TEMPERATURE_MAX", d.semantic_temperature_max, minimum=0.0
            ),
            candidates=env_int(env, "FASTROUTE_CACHE_CANDIDATES", d.candidates, minimum=1, maximum=64),
            ef_search=env_int(env, "FASTROUTE_CACHE_EF_SEARCH", d.ef_search, minimum=1, maximum=4096),
            indexer_idle=env_bool(env, "FASTROUTE_CACHE_INDEXER_IDLE", d.indexer_idle),
            redis_url=env_opt_str(env, "FASTROUTE_REDIS_URL"),
            redis_prefix=env_opt_str(env, "FASTROUTE_CACHE_REDIS_PREFIX") or d.redis_prefix,
        )
