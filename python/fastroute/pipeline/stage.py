"""The `Stage` interface: how governance, caching, metrics and the ledger plug into every request.

A stage may raise a `FastrouteError` from `on_request` / `on_routed` to refuse a request, or set
`ctx.cached_body` in `on_routed` to answer without an upstream. `on_finish` always runs (success or
failure, streamed or not) in reverse order, exactly once per request that reached the pipeline.
"""

from __future__ import annotations

from fastroute.pipeline.context import RequestContext


class Stage:
    """Base class with no-op hooks; subclasses override what they need."""

    name = "stage"
    # True when a hook may wait on the network (e.g. a Redis store): the gateway then runs it concurrently
    # for requests that reach it together instead of one after another (`pipeline.batch`). Hooks that only
    # sometimes wait on a worker thread (scans of very long prompts) need not say so: the batch waits, as
    # the whole loop already waits for those prompts' analysis.
    awaits_io = False

    async def start(self) -> None:
        """Called once when the app starts (open connections, files)."""

    async def close(self) -> None:
        """Called once when the app stops (flush, close)."""

    async def on_request(self, ctx: RequestContext) -> None:
        """Before routing: identify the tenant, screen the prompt, apply limits."""

    async def on_routed(self, ctx: RequestContext) -> None:
        """After routing: reserve budget, look up the cache."""

    async def on_finish(self, ctx: RequestContext) -> None:
        """After the answer or the failure: settle spend, record metrics, store in cache."""
