"""`QualityStage`: records how each request was routed, starts shadow evaluations, applies recalibration.

Sits after the observers and before governance and the cache: its `on_routed` raises an application's
tier when recalibration demoted the one routing chose (policy and the client's cap still bound it), and
its `on_finish` writes the routing record and hands eligible requests to shadow evaluation.
Must not import aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastroute import _native
from fastroute.background import stop_task
from fastroute.catalogue import TIERS, Catalogue, ModelEntry
from fastroute.chat_request import ChatRequest
from fastroute.errors import NotFound, PermissionDenied
from fastroute.pipeline import RequestContext, Stage, Tenant
from fastroute.providers.base import CallTimeouts, Completion, Provider
from fastroute.quality.feedback import Feedback
from fastroute.quality.judge import build_judge
from fastroute.quality.labels import LabelFile, label_row, labels_path
from fastroute.quality.recalibration import RecalibrationEvent, Recalibrator
from fastroute.quality.settings import QualitySettings
from fastroute.quality.shadow import ShadowBudget, ShadowEvaluator, ShadowJob, ShadowOutcome, answer_of
from fastroute.quality.store import QualityStore, RouteRecord, ShadowResult, utc_day
from fastroute.routing.decision import RouteDecision
from fastroute.routing.router import FORCE_TIER_HEADER, MAX_TIER_HEADER

log = logging.getLogger("fastroute.quality")
audit = logging.getLogger("fastroute.audit")
FEATURE_VERSION = int(_native.FEATURE_VERSION)


class Upstreams(Protocol):
    """What shadow evaluation borrows from the gateway: its providers and call timeouts."""

    providers: dict[str, Provider]
    timeouts: CallTimeouts


@dataclass(slots=True)
class _Routed:
    natural_tier: str  # what routing chose, before this stage
    raised_to: str | None = None  # the tier this stage raised it to


def _rank(tier: str) -> int:
    return TIERS.index(tier)


class QualityStage(Stage):
    """The quality loop's pipeline stage; also the API behind `/v1/feedback` and `/admin/quality`."""

    name = "quality"

    def __init__(self, settings: QualitySettings, catalogue: Catalogue, data_dir: Path) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.data_dir = data_dir
        self.store = QualityStore(
            data_dir / "quality" / "quality.sqlite3",
            retention_days=settings.retention_days,
            max_records=settings.max_records,
        )
        self.recalibrator = Recalibrator(
            target=settings.target,
            min_samples=settings.min_samples,
            window=settings.window,
            z=settings.confidence_z,
            enabled=settings.recalibrate,
            app_targets=dict(settings.app_targets),
        )
        self.shadow: ShadowEvaluator | None = None
        self._upstreams: Upstreams | None = None
        self._routed: dict[int, _Routed] = {}
        self._label_writes: set[asyncio.Task[None]] = set()
        self.labels = LabelFile(
            labels_path(data_dir), retention_days=settings.retention_days, max_rows=settings.labels_max_rows
        )
        self._next_compaction = 0.0
        self.moves: Counter[str] = Counter()  # recalibration moves by this process, by action
        self.sync_interval_s = 2.0  # how soon other worker processes' moves apply here
        self._last_event_id = 0
        self._syncer: asyncio.Task[None] | None = None

    def bind(self, upstreams: Upstreams) -> None:
        """Gives shadow evaluation the gateway's providers (called by the composition root)."""
        self._upstreams = upstreams
        if not self.settings.shadow_enabled:
            return
        judge = build_judge(
            self.settings.judge, self.settings.agree_threshold, dict(self.catalogue.models), self._judge_call
        )
        self.shadow = ShadowEvaluator(
            self.catalogue,
            self._upstream_call,
            judge,
            ShadowBudget(self.settings.shadow_budget_usd),
            self._on_outcome,
            rate=self.settings.shadow_rate,
            concurrency=self.settings.shadow_concurrency,
            max_tokens=self.settings.shadow_max_tokens,
            on_spend=lambda usd: self.store.add_spend(usd, time.time()),
        )

    async def _upstream_call(self, model: ModelEntry, request: ChatRequest) -> Completion:
        assert self._upstreams is not None
        return await self._upstreams.providers[model.provider].complete(model, request, self._upstreams.timeouts)

    async def _judge_call(
        self, model: ModelEntry, messages: list[dict[str, Any]], max_tokens: int
    ) -> tuple[str, float]:
        body = {"model": model.name, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        request = ChatRequest(
            body=body,
            model=model.name,
            messages=messages,
            stream=False,
            max_tokens=max_tokens,
            temperature=0.0,
            include_usage=False,
            uses_tools=False,
            json_mode=False,
        )
        completion = await self._upstream_call(model, request)
        usage = completion.usage
        cost = model.cost(usage.prompt_tokens, usage.completion_tokens) if usage is not None else 0.0
        return answer_of(completion.body), cost

    # lifecycle

    async def start(self) -> None:
        if not self.settings.enabled:
            return
        await self.store.start()
        await self.sync()
        await self._compact_labels()
        self._syncer = asyncio.create_task(self._sync_loop(), name="quality-sync")

    async def sync(self) -> None:
        """Applies recalibration moves stored since the last sync (by any worker process, this one included:
        replaying is idempotent) and takes today's shadow spend of all workers from the store."""
        for event in await self.store.events_after(self._last_event_id):
            self._last_event_id = int(event.pop("id"))
            self.recalibrator.apply(RecalibrationEvent(**event))
        if self.shadow is not None:
            budget = self.shadow.budget
            day = utc_day(time.time())
            spent = await self.store.spent_on(day)
            if day != budget.day:
                budget.day, budget.spent_usd = day, spent
            else:
                budget.spent_usd = max(budget.spent_usd, spent)

    async def _compact_labels(self) -> None:
        self._next_compaction = time.time() + 3600.0
        await asyncio.to_thread(self.labels.compact)

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval_s)
            try:
                await self.sync()
                if time.time() >= self._next_compaction:
                    await self._compact_labels()
            except Exception:
                log.exception("quality: syncing recalibration state failed")

    async def close(self) -> None:
        await stop_task(self._syncer)
        self._syncer = None
        if self.shadow is not None:
            await self.shadow.close()
        if self._label_writes:
            await asyncio.gather(*list(self._label_writes), return_exceptions=True)
        if self.settings.enabled:
            await self.store.close()

    # pipeline hooks

    async def on_routed(self, ctx: RequestContext) -> None:
        decision = ctx.decision
        if not self.settings.enabled or decision is None or not ctx.chat.wants_auto:
            return
        if ctx.headers.get(FORCE_TIER_HEADER):
            return  # the client chose the tier: respect it, and leave it out of measurement
        natural = decision.tier
        self._routed[id(ctx)] = _Routed(natural)
        target = self.recalibrator.route(ctx.tenant.app, natural)
        if target == natural:
            return
        target = self._bounded(ctx, natural, target)
        if target == natural:
            return
        needed = (ctx.analysis.tokens if ctx.analysis is not None else 0) + (ctx.chat.max_tokens or 0)
        chain = tuple(m for m in self.catalogue.tier_chain(target) if m.max_input_tokens >= needed)
        if not chain:
            return
        reason = f"{decision.reason}; quality: {natural} demoted for app {ctx.tenant.app}, raised to {target}"
        ctx.decision = RouteDecision(tier=target, chain=chain, reason=reason, score=decision.score)
        ctx.decisions.append(f"quality:raise:{natural}->{target}")
        self._routed[id(ctx)] = _Routed(natural, target)

    @staticmethod
    def _bounded(ctx: RequestContext, natural: str, target: str) -> str:
        """`target`, lowered to respect the client's `x-fastroute-max-tier` and the policy's allowed tiers."""
        top = _rank(target)
        cap = (ctx.headers.get(MAX_TIER_HEADER) or "").strip().lower()
        if cap in TIERS:
            top = min(top, _rank(cap))
        for rank in range(top, _rank(natural), -1):
            if ctx.allowed_tiers is None or TIERS[rank] in ctx.allowed_tiers:
                return TIERS[rank]
        return natural

    async def on_finish(self, ctx: RequestContext) -> None:
        routed = self._routed.pop(id(ctx), None)
        decision = ctx.decision
        if not self.settings.enabled or decision is None:
            return  # refused before routing (bad key, bad body): nothing to judge, nothing worth a row
        model = ctx.served_by or (decision.model.name if ctx.cached_body else None)
        self.store.add_route(
            RouteRecord(
                request_id=ctx.request_id,
                app=ctx.tenant.app,
                ts=time.time(),
                department=ctx.tenant.department,
                key_id=ctx.tenant.key_id,
                tier=self._served_tier(ctx, decision),
                natural_tier=routed.natural_tier if routed is not None else None,
                score=decision.score,
                reason=decision.reason,
                model=model,
                feature_version=FEATURE_VERSION if ctx.analysis is not None else None,
                status=ctx.status,
            )
        )
        if self.shadow is not None and routed is not None:
            self._maybe_shadow(ctx, routed, decision)

    def _served_tier(self, ctx: RequestContext, decision: RouteDecision) -> str:
        """The tier of the deployment that answered (failover may have left the routed tier)."""
        model = self.catalogue.models.get(ctx.served_by) if ctx.served_by else None
        return model.tier if model is not None else decision.tier

    def _maybe_shadow(self, ctx: RequestContext, routed: _Routed, decision: RouteDecision) -> None:
        assert self.shadow is not None
        if ctx.status >= 400 or ctx.error is not None or ctx.served_by is None or ctx.cached_body is not None:
            return
        # Measure the tier routing chose, unless a later stage (a budget downgrade) or failover changed what
        # was served: then measure what was served.
        served = self._served_tier(ctx, decision)
        natural = routed.natural_tier if served == (routed.raised_to or routed.natural_tier) else served
        if natural == TIERS[-1]:
            return
        if ctx.allowed_tiers is not None and TIERS[-1] not in ctx.allowed_tiers:
            return  # policy keeps this application's prompts off the frontier tier: shadowing must too
        apps = self.settings.shadow_apps
        if (apps is not None and ctx.tenant.app not in apps) or not self.shadow.wants():
            return
        text = answer_of(ctx.response_body) if ctx.response_body is not None else "".join(ctx.streamed_text)
        if not text:
            return
        self.shadow.offer(
            ShadowJob(
                request_id=ctx.request_id,
                app=ctx.tenant.app,
                chat=ctx.chat,
                prompt_tokens=ctx.analysis.tokens if ctx.analysis is not None else len(ctx.prompt_text) // 4,
                natural_tier=natural,
                served_tier=served,
                served_model=ctx.served_by,
                served_text=text,
                structured=ctx.chat.json_mode or ctx.chat.uses_tools,
                feature_version=FEATURE_VERSION if ctx.analysis is not None else None,
                keep_label=not any(d.startswith("pii:detect") for d in ctx.decisions),
            )
        )

    # outcomes

    async def _on_outcome(self, outcome: ShadowOutcome) -> None:
        job, now = outcome.job, time.time()
        labels = []
        for comparison in outcome.comparisons:
            verdict = comparison.verdict
            self.store.add_shadow(
                ShadowResult(
                    now,
                    job.request_id,
                    job.app,
                    comparison.tier,
                    comparison.model,
                    outcome.reference_model,
                    verdict.judge,
                    verdict.agree,
                    verdict.score,
                )
            )
            self._observe(job.app, comparison.tier, verdict.agree, "shadow")
            if self.settings.labels and job.keep_label and comparison.tier == job.natural_tier:
                labels.append(
                    label_row(
                        job.chat.messages,
                        agree=verdict.agree,
                        agreement=verdict.score,
                        app=job.app,
                        tier=comparison.tier,
                        model=comparison.model,
                        reference_model=outcome.reference_model,
                        judge=verdict.judge,
                        request_id=job.request_id,
                        feature_version=job.feature_version,
                        ts=now,
                    )
                )
        if labels:
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.labels.append, labels))
            self._label_writes.add(task)
            task.add_done_callback(self._label_writes.discard)

    def _observe(self, app: str, tier: str, passed: bool, signal: str) -> None:
        event = self.recalibrator.observe(app, tier, passed, signal)
        if event is None:
            return
        self.moves[event.action] += 1
        self.store.add_event(event.row())
        audit.warning("%s", event.describe())

    async def feedback(self, tenant: Tenant, feedback: Feedback) -> dict[str, Any]:
        """Stores feedback on one of `tenant`'s requests. Unknown id: 404; another tenant's: 403."""
        records = await self.store.routes_for(feedback.request_id)
        if not records:
            raise NotFound(
                f"No request with id {feedback.request_id!r} is known (or it is past retention).", param="request_id"
            )
        mine = next((r for r in records if r.app == tenant.app), None)
        if mine is None:
            raise PermissionDenied("That request belongs to another application.", param="request_id")
        await self.store.set_feedback(mine.request_id, mine.app, feedback.score, feedback.comment)
        if mine.feedback_score is None and mine.tier is not None and mine.status < 400:
            self._observe(mine.app, mine.tier, feedback.positive, "feedback")  # first feedback counts, once
        if self.settings.log_comments and feedback.comment:
            log.info(
                "feedback on %s from app %s: score %.2f comment %r",
                mine.request_id,
                mine.app,
                feedback.score,
                feedback.comment,
            )
        else:
            log.info("feedback on %s from app %s: score %.2f", mine.request_id, mine.app, feedback.score)
        return {
            "object": "feedback",
            "request_id": mine.request_id,
            "score": feedback.score,
            "tier": mine.tier,
            "model": mine.model,
            "feature_version": mine.feature_version,
        }

    def reset(self, app: str) -> list[str]:
        """Restores every tier recalibration demoted for `app` (logged and stored as restore events)."""
        tiers = self.recalibrator.reset(app)
        now = time.time()
        for tier in tiers:
            event = RecalibrationEvent(
                now, app, tier, "restore", "operator", 0, 0.0, 0.0, 1.0, self.recalibrator.target
            )
            self.store.add_event(event.row())
            audit.warning("quality: app %r tier %s restored by an operator", app, tier)
        return tiers
