"""`CacheStage`: the response cache in the request pipeline (lookup after routing, store after the answer).

Keys: tenant (application), the routed tier for `auto` or the named model, every answer-changing request
field (`fingerprint_request`) and the whole conversation. Honours `cache-control: no-cache` (do not serve
from cache, still store) and `no-store` (neither), and the policy's per-application switch
(`ctx.cache_allowed`). Streams are stored once they complete and are served as a replayed stream.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from fastroute.cache.indexer import BackgroundIndexer
from fastroute.cache.keys import fingerprint_request
from fastroute.cache.semantic_cache import SemanticCache
from fastroute.cache.settings import CacheSettings
from fastroute.cache.types import CacheScope, RequestKeys
from fastroute.pipeline import RequestContext, Stage

if TYPE_CHECKING:
    from fastroute.cache.replication import RedisReplication

log = logging.getLogger("fastroute.cache")


def _cache_control(ctx: RequestContext) -> set[str]:
    raw = ctx.headers.get("cache-control", "")
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def _streamed_body(ctx: RequestContext) -> dict[str, Any] | None:
    """The whole answer a completed stream delivered, in `chat.completion` shape."""
    if ctx.usage is None or ctx.usage_estimated:
        return None
    p, c = ctx.usage.prompt_tokens, ctx.usage.completion_tokens
    return {
        "id": f"chatcmpl-{ctx.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": ctx.served_by or "",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(ctx.streamed_text)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
    }


class CacheStage(Stage):
    name = "cache"

    def __init__(self, settings: CacheSettings, cache: SemanticCache) -> None:
        self.settings = settings
        self.cache = cache
        self._replication: RedisReplication | None = None
        if settings.redis_url:  # redis-py is imported only when it is used (about 8 MB and 0.2 s at start-up)
            from fastroute.cache.replication import RedisReplication

            self._replication = RedisReplication(cache, settings.redis_url, settings.redis_prefix)
        self._indexer = BackgroundIndexer(cache, idle=settings.indexer_idle)
        # request id -> what on_finish needs to store the answer (keys computed once, in on_routed)
        self._pending: dict[str, tuple[CacheScope, str, RequestKeys]] = {}

    async def start(self) -> None:
        await self._indexer.start()
        if self._replication is not None:
            await self._replication.start()

    async def close(self) -> None:
        if self._replication is not None:
            await self._replication.close()
        await self._indexer.close()

    def _keys(self, ctx: RequestContext) -> tuple[CacheScope, str]:
        assert ctx.decision is not None
        chat = ctx.chat
        target = f"tier:{ctx.decision.tier}" if chat.wants_auto else f"model:{ctx.decision.model.name}"
        temperature = chat.temperature if chat.temperature is not None else 1.0  # the providers' default
        return CacheScope(tenant=ctx.tenant.app, temperature=temperature), fingerprint_request(chat.body, model=target)

    async def on_routed(self, ctx: RequestContext) -> None:
        if not self.settings.enabled or not ctx.cache_allowed or ctx.analysis is None:
            ctx.cache_status = "off"
            return
        directives = _cache_control(ctx)
        if "no-store" in directives:
            ctx.cache_status = "bypass"
            return
        scope, fingerprint = self._keys(ctx)
        keys = self.cache.keys(scope, ctx.analysis, fingerprint, ctx.prompt_text)
        self._pending[ctx.request_id] = (scope, fingerprint, keys)
        if "no-cache" in directives:
            ctx.cache_status = "bypass"
            return
        hit = self.cache.lookup(scope, ctx.analysis, fingerprint, ctx.prompt_text, keys)
        if hit is None:
            ctx.cache_status = "miss"
            return
        del self._pending[ctx.request_id]
        ctx.cached_body = hit.body
        ctx.cache_status = f"hit-{hit.kind}"

    async def on_finish(self, ctx: RequestContext) -> None:
        pending = self._pending.pop(ctx.request_id, None)
        if pending is None or ctx.error is not None or ctx.status != 200 or ctx.cached_body is not None:
            return
        body = ctx.response_body if ctx.response_body is not None else _streamed_body(ctx)
        if body is None:
            return
        scope, fingerprint, keys = pending
        self.cache.store(scope, ctx.analysis, fingerprint, ctx.prompt_text, body, keys)
