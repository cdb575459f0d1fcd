"""The gateway service: runs one request through stages, analysis, routing and the upstream call.

Knows nothing of HTTP framing (the server owns that); owns the order of the pipeline and spend math.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from fastroute.catalogue import Catalogue, ModelEntry
from fastroute.errors import ContextLengthExceeded, FastrouteError
from fastroute.pipeline import RequestContext, Stage
from fastroute.pipeline.batch import Batched, Step
from fastroute.providers.base import CallTimeouts, Completion, Provider, UpstreamStream, Usage
from fastroute.reliability import Dispatcher, default_dispatcher
from fastroute.routing.router import Router

log = logging.getLogger("fastroute.gateway")


class Analyzer(Protocol):
    def analyze(self, text: str) -> Any: ...


class Gateway:
    def __init__(
        self,
        catalogue: Catalogue,
        providers: dict[str, Provider],
        router: Router,
        analyzer: Analyzer,
        conversation_text: Callable[..., str],
        stages: Sequence[Stage],
        timeouts: CallTimeouts,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.providers = providers
        self.router = router
        self.analyzer = analyzer
        self._conversation_text = conversation_text
        self.stages = list(stages)
        # Per hook, only the stages that implement it: most stages use one or two of the three hooks,
        # and awaiting a no-op coroutine still costs ~1 us. Requests that reach a hook together run it
        # one after another before the next hook (`pipeline.batch`: the hooks' code stays in the CPU caches).
        routing = Step("routing", self, "_route")
        self.preparer = Batched(
            [*_hook_steps(self.stages, "on_request"), routing, *_hook_steps(self.stages, "on_routed")], failures="end"
        )
        self.finisher = Batched(_hook_steps(self.stages, "on_finish")[::-1], failures="log")
        self.timeouts = timeouts
        self._timeouts_by_model: dict[str, tuple[ModelEntry, CallTimeouts]] = {}
        self.in_flight = 0  # requests between `prepare` and the end of `finish`: with one, nothing is batched
        self.dispatcher = dispatcher or default_dispatcher(catalogue)  # failover, retries, breakers, hedging

    async def prepare(self, ctx: RequestContext) -> None:
        """Stages' `on_request`, prompt analysis, routing, context-window check, stages' `on_routed`; raises
        what refused the request. Every call must be followed by `finish(ctx)`."""
        self.in_flight += 1
        await self.preparer.run(ctx, alone=self.in_flight == 1)

    async def _route(self, ctx: RequestContext) -> None:
        """Prompt analysis, routing decision and context-window check (a step of `prepare`)."""
        chat = ctx.chat
        route_t0 = time.perf_counter()
        ctx.prompt_text = self._conversation_text(chat.messages, tools=chat.uses_tools, json_mode=chat.json_mode)
        ctx.analysis = analysis = self.analyzer.analyze(ctx.prompt_text)
        decision = self.router.decide(
            chat.model, analysis.features, analysis.tokens, ctx.headers, ctx.allowed_tiers, text=ctx.prompt_text
        )
        ctx.route_s = time.perf_counter() - route_t0
        needed = analysis.tokens + (chat.max_tokens or 0)
        fitting = tuple(m for m in decision.chain if m.max_input_tokens >= needed)
        if not fitting:
            limit = max(m.max_input_tokens for m in decision.chain)
            raise ContextLengthExceeded(
                f"This request needs about {needed} tokens (prompt {analysis.tokens} + max_tokens "
                f"{chat.max_tokens or 0}); the largest model available for it accepts {limit}.",
                param="messages",
            )
        if fitting != decision.chain:
            decision = type(decision)(decision.tier, fitting, decision.reason + "; context filter", decision.score)
        ctx.decision = decision

    async def complete(self, ctx: RequestContext) -> dict[str, Any]:
        """A whole answer, from the cache or the first deployment in the chain that succeeds."""
        if ctx.cached_body is not None:
            return ctx.cached_body

        async def call(model: ModelEntry) -> Completion:
            return await self.providers[model.provider].complete(model, ctx.chat, self.timeouts_for(model))

        completion = await self.dispatcher.complete(ctx, call)
        ctx.usage = completion.usage
        ctx.response_body = completion.body
        return completion.body

    async def open_stream(self, ctx: RequestContext) -> UpstreamStream:
        """Opens a stream; failover across the chain happens here, before any byte reaches the client."""

        async def call(model: ModelEntry) -> UpstreamStream:
            return await self.providers[model.provider].open_stream(model, ctx.chat, self.timeouts_for(model))

        return await self.dispatcher.stream(ctx, call)

    def timeouts_for(self, model: ModelEntry) -> CallTimeouts:
        """The global upstream timeouts, overridden by the deployment's own where the catalogue sets them."""
        known = self._timeouts_by_model.get(model.name)
        if known is not None and known[0] is model:
            return known[1]
        t = self.timeouts
        timeouts = CallTimeouts(
            connect_s=model.connect_timeout_s or t.connect_s,
            first_token_s=model.first_token_timeout_s or t.first_token_s,
            total_s=model.total_timeout_s or t.total_s,
        )
        self._timeouts_by_model[model.name] = (model, timeouts)  # one per deployment entry, built once
        return timeouts

    def account(self, ctx: RequestContext, stream_usage: Usage | None = None) -> None:
        """Sets usage and cost: reported usage when the upstream gave it, else an estimate of what was sent."""
        if stream_usage is not None:
            ctx.usage = stream_usage
        if ctx.cached_body is not None:
            ctx.cost_usd = 0.0
            usage = ctx.cached_body.get("usage") or {}
            tokens = Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))
            ctx.usage = tokens  # what the cached answer holds: the ledger and metrics count it, at cost 0
            ctx.counterfactual_usd = self.catalogue.frontier_reference().cost(
                tokens.prompt_tokens, tokens.completion_tokens
            )
            return
        if ctx.served_by is None:
            return
        model = self.catalogue.models[ctx.served_by]
        if ctx.usage is None:
            prompt = ctx.analysis.tokens if ctx.analysis is not None else 0
            completion = sum(max(1, (len(t) + 3) // 4) for t in ctx.streamed_text if t)
            ctx.usage = Usage(prompt, completion)
            ctx.usage_estimated = True
        ctx.cost_usd = model.cost(ctx.usage.prompt_tokens, ctx.usage.completion_tokens)
        ref = self.catalogue.frontier_reference()
        ctx.counterfactual_usd = ref.cost(ctx.usage.prompt_tokens, ctx.usage.completion_tokens)

    async def finish(self, ctx: RequestContext) -> None:
        """Runs every stage's `on_finish` (reverse order); a failing stage is logged, never re-raised."""
        if ctx.finished is None:  # the server may have set it when the answer went out
            ctx.finished = time.perf_counter()
        try:
            await self.finisher.run(ctx, alone=self.in_flight == 1)
        finally:
            self.in_flight -= 1

    async def wait_idle(self) -> None:
        """Returns once every request handed to `prepare` or `finish` so far has been through it (shutdown)."""
        await self.preparer.wait_idle()
        await self.finisher.wait_idle()

    @staticmethod
    def fail(ctx: RequestContext, error: FastrouteError) -> None:
        ctx.error = error
        ctx.status = error.http_status


def _hook_steps(stages: Sequence[Stage], hook: str) -> list[Step]:
    """A step per stage whose class overrides `hook` (in pipeline order)."""
    base = getattr(Stage, hook)
    return [
        Step(f"{s.name}.{hook}", s, hook, s.awaits_io) for s in stages if getattr(type(s), hook, base) is not base
    ]
