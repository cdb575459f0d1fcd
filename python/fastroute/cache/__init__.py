"""The response cache: exact then semantic (embedding + HNSW + verifier), per tenant, bounded, shareable via Redis.

Gateway API (all synchronous, microseconds, safe on the event loop):

    cache = SemanticCache(CacheSettings.from_env(env), embedder.embed, EMBEDDING_DIM)   # at start-up
    fp = fingerprint_request(body, model=routed_model_or_tier)   # every answer-changing request field
    scope = CacheScope(tenant=ctx.tenant.app, temperature=body.get("temperature", 1.0) or 0.0)
    keys = cache.keys(scope, analysis, fp, text)     # once per request (exact key, partition, last turn)
    hit = cache.lookup(scope, analysis, fp, text, keys)  # -> CacheHit(kind, body, similarity, entry_key, age_s) | None
    cache.store(scope, analysis, fp, text, response_body, keys)   # after a successful, complete upstream answer

`analysis` is `fastroute.native.PromptAnalysis` (only `.key`, the normalised whole conversation, is read);
`text` is `fastroute.prompt.conversation_text(messages)`, the same text the analysis was made from.
Entries of other tenants, other fingerprints (model/tier, tools, JSON mode, temperature, ...) or other
earlier turns are never candidates. With `FASTROUTE_REDIS_URL`, `RedisReplication(cache, url, prefix)`
(`fastroute.cache.replication`) shares entries between replicas: `await start()` in a cleanup_ctx, then
`await close()`. `BackgroundIndexer(cache)` (`fastroute.cache.indexer`, started by `CacheStage`) moves the HNSW
inserts off the event loop.
"""

from fastroute.cache.keys import fingerprint_request
from fastroute.cache.semantic_cache import SemanticCache
from fastroute.cache.settings import CacheSettings
from fastroute.cache.types import CacheEntry, CacheHit, CacheScope

__all__ = ["CacheEntry", "CacheHit", "CacheScope", "CacheSettings", "SemanticCache", "fingerprint_request"]
