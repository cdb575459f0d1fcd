"""Limits enforced per request: rate limits (rpm / tpm), the per-request cost ceiling, and budgets
(reserve the worst case before forwarding, settle the actual cost after, release on failure).

A request reserves once, whatever its retries and fallbacks, and settles exactly once in `on_finish`.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from fastroute.catalogue import Catalogue, ModelEntry
from fastroute.errors import BudgetExceeded, PolicyViolation, RateLimited
from fastroute.governance.policy import PERIOD_TTL_S, Budget, budget_key
from fastroute.governance.shared_table import SharedTableStore
from fastroute.governance.snapshot_memo import SnapshotMemo
from fastroute.governance.state import RATE_WINDOW_S, Line, MemoryStore, StateStore
from fastroute.governance.tenants import RequestGovernance, governance_of, note
from fastroute.ledger import Ledger
from fastroute.pipeline import RequestContext, Stage
from fastroute.routing.decision import RouteDecision
from fastroute.routing.router import tier_rank

DAY_S = 86400
# The prompt count is our tokenizer's; providers count a little differently, so leave headroom (+10% + 16).
PROMPT_SLACK_TOKENS = 16


def _with_margin(prompt_tokens: int) -> int:
    return prompt_tokens + (prompt_tokens + 9) // 10 + PROMPT_SLACK_TOKENS


def _output_cap(model: ModelEntry, max_tokens: int | None) -> int:
    """The most output tokens the call may produce: the request's `max_tokens` within the model's own limit."""
    return min(max_tokens, model.max_output_tokens) if max_tokens else model.max_output_tokens


def worst_case_cost(model: ModelEntry, prompt_tokens: int, max_tokens: int | None) -> float:
    """Upper bound of one call: prompt (with margin) at input price + all allowed output at output price."""
    return model.cost(_with_margin(prompt_tokens), _output_cap(model, max_tokens))


def chain_worst_case(chain: tuple[ModelEntry, ...], prompt_tokens: int, max_tokens: int | None) -> float:
    """Whichever deployment of the chain ends up answering, it costs at most this."""
    # `max(worst_case_cost(m, ...) for m in chain)` spelled out: chains are 1-3 long and this runs several
    # times per request, where the generator and the per-model margin cost more than the arithmetic.
    prompt = _with_margin(prompt_tokens)
    worst = 0.0
    first = True
    for m in chain:
        cost = m.cost(prompt, _output_cap(m, max_tokens))
        if first or cost > worst:
            worst, first = cost, False
    return worst


def _prompt_tokens(ctx: RequestContext) -> int:
    return int(ctx.analysis.tokens) if ctx.analysis is not None else 0


def _cheaper_chains(
    ctx: RequestContext, gov: RequestGovernance, catalogue: Catalogue
) -> Iterator[tuple[str, tuple[ModelEntry, ...]]]:
    """Allowed tiers cheaper than the routed one, most capable first, with their allowed deployments."""
    assert ctx.decision is not None
    allowed = gov.app.rules.allowed_tiers or frozenset(catalogue.tiers)
    if ctx.allowed_tiers is not None:
        allowed = allowed & ctx.allowed_tiers
    models = gov.app.rules.allowed_models
    for tier in sorted(allowed, key=tier_rank, reverse=True):
        if tier_rank(tier) >= tier_rank(ctx.decision.tier):
            continue
        chain = tuple(m for m in catalogue.tier_chain(tier) if models is None or m.name in models)
        if chain:
            yield tier, chain


def cap_escalation(ctx: RequestContext, catalogue: Catalogue, limit_usd: float) -> None:
    """Keeps a later escalation (reliability moving a failed request up a tier) within `limit_usd`: tiers
    above the routed one stay allowed only if their whole chain's worst case fits."""
    assert ctx.decision is not None
    allowed = ctx.allowed_tiers
    prompt, max_tokens, rank = _prompt_tokens(ctx), ctx.chat.max_tokens, tier_rank(ctx.decision.tier)
    bound = limit_usd + 1e-12
    dropped: list[str] = []
    for t in allowed if allowed is not None else catalogue.tiers:
        if tier_rank(t) > rank and not chain_worst_case(catalogue.tier_chain(t), prompt, max_tokens) <= bound:
            dropped.append(t)
    if dropped:  # (None means every tier of the catalogue)
        ctx.allowed_tiers = (allowed if allowed is not None else frozenset(catalogue.tiers)).difference(dropped)


def _downgrade(ctx: RequestContext, tier: str, chain: tuple[ModelEntry, ...], kind: str, label: str) -> None:
    assert ctx.decision is not None
    note(ctx, f"{kind}:downgrade:{label}:{ctx.decision.tier}->{tier}")
    ctx.decision = RouteDecision(tier, chain, f"{ctx.decision.reason}; downgraded by {label}", None)


def rate_lines(gov: RequestGovernance, unit: str) -> tuple[Line, ...]:
    """Sliding-minute lines (`rpm` or `tpm`) of the request's application and department."""
    lines = []
    app_limit = gov.app.rules.rpm if unit == "rpm" else gov.app.rules.tpm
    dept_limit = gov.department.rpm if unit == "rpm" else gov.department.tpm
    if app_limit is not None:
        lines.append(Line(f"{unit}:app:{gov.app.name}", app_limit, 2 * RATE_WINDOW_S,
                          f"applications.{gov.app.name}.{unit}"))
    if dept_limit is not None:
        lines.append(Line(f"{unit}:dept:{gov.department.name}", dept_limit, 2 * RATE_WINDOW_S,
                          f"departments.{gov.department.name}.{unit}"))
    return tuple(lines)


class RateLimitStage(Stage):
    """Sliding-minute limits per application and department: requests (rpm) and tokens (tpm)."""

    name = "rate_limits"

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.awaits_io = store.remote
        self._lines: SnapshotMemo[tuple[str, str, str], tuple[Line, ...]] = SnapshotMemo()

    def _rate_lines(self, gov: RequestGovernance, unit: str) -> tuple[Line, ...]:
        """The rate lines of this request's application and department (built once per policy snapshot)."""
        key = (gov.app.name, gov.department.name, unit)
        lines = self._lines.get(gov.policy, key)
        if lines is None:
            lines = self._lines.put(key, rate_lines(gov, unit))
        return lines

    @staticmethod
    def _refuse(ctx: RequestContext, line: Line, what: str) -> RateLimited:
        headers = note(ctx, f"ratelimit:block:{line.label}")
        retry = max(1, math.ceil(RATE_WINDOW_S - time.time() % RATE_WINDOW_S))
        return RateLimited(
            f"Rate limit reached: {line.label} allows {line.limit:g} {what} per minute.",
            headers={**headers, "Retry-After": str(retry)},
        )

    async def on_request(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is None:
            return
        lines = self._rate_lines(gov, "rpm")
        if lines:
            failed = await self.store.rate_acquire(lines, 1)
            if failed is not None:
                raise self._refuse(ctx, lines[failed], "requests")

    async def on_routed(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is None or ctx.cached_body is not None:
            return
        lines = self._rate_lines(gov, "tpm")
        if lines:
            failed = await self.store.rate_acquire(lines, _prompt_tokens(ctx))
            if failed is not None:
                raise self._refuse(ctx, lines[failed], "tokens")
            gov.tpm_lines = lines

    async def on_finish(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is not None and gov.tpm_lines and ctx.usage is not None and ctx.served_by is not None:
            await self.store.rate_add(gov.tpm_lines, ctx.usage.completion_tokens)


def _within(chain: tuple[ModelEntry, ...], prompt: int, max_tokens: int | None, limit: float) -> tuple[ModelEntry, ...]:
    """The deployments of `chain` whose worst case is within `limit` (`chain` itself when all are)."""
    fit = [m for m in chain if worst_case_cost(m, prompt, max_tokens) <= limit]
    return chain if len(fit) == len(chain) else tuple(fit)


class CostCeilingStage(Stage):
    """`max_cost_per_request_usd`: refuse (400) or downgrade a request whose worst case exceeds it."""

    name = "cost_ceiling"

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    async def on_routed(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is None or ctx.decision is None or ctx.cached_body is not None:
            return
        rules = gov.app.rules
        limit = rules.max_cost_per_request_usd
        if limit is None:
            return
        prompt, max_tokens = _prompt_tokens(ctx), ctx.chat.max_tokens
        decision = ctx.decision
        fitting = _within(decision.chain, prompt, max_tokens, limit)
        if fitting:
            if fitting != decision.chain:
                ctx.decision = RouteDecision(decision.tier, fitting, decision.reason + "; cost ceiling", decision.score)
            cap_escalation(ctx, self.catalogue, limit)
            return
        if rules.max_cost_action == "downgrade":
            for tier, chain in _cheaper_chains(ctx, gov, self.catalogue):
                fit = _within(chain, prompt, max_tokens, limit)
                if fit:
                    _downgrade(ctx, tier, fit, "cost", "max_cost_per_request_usd")
                    cap_escalation(ctx, self.catalogue, limit)
                    return
        worst = chain_worst_case(decision.chain, prompt, max_tokens)
        headers = note(ctx, "cost:block")
        raise PolicyViolation(
            f"This request could cost up to ${worst:.6f} (prompt ~{prompt} tokens, max_tokens "
            f"{max_tokens or decision.model.max_output_tokens}) on the {decision.tier} tier, over application "
            f"'{gov.app.name}''s max_cost_per_request_usd of ${limit:g}. Lower max_tokens or shorten the prompt.",
            param="max_tokens",
            headers=headers,
        )


def _period_lines(scope: str, name: str, budget: Budget, now: datetime) -> list[tuple[Line, Budget]]:
    lines = []
    for period, limit, field in (("day", budget.daily_usd, "daily_usd"), ("month", budget.monthly_usd, "monthly_usd")):
        if limit is not None:
            key = budget_key(scope, name, period, now)
            lines.append((Line(key, limit, PERIOD_TTL_S[period], f"{scope}.{name}.budgets.{field}"), budget))
    return lines


def budget_lines(gov: RequestGovernance, now: datetime) -> list[tuple[Line, Budget]]:
    """Every budget this request counts against: its application's and its department's."""
    return [
        *_period_lines("applications", gov.app.name, gov.app.budget, now),
        *_period_lines("departments", gov.department.name, gov.department.budget, now),
    ]


def seconds_until_reset(label: str, now: datetime) -> int:
    if label.endswith("daily_usd"):
        nxt = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (first + timedelta(days=32)).replace(day=1)
    return max(1, math.ceil((nxt - now).total_seconds()))


async def seed_from_ledger(store: MemoryStore | SharedTableStore, ledger: Ledger, now: datetime) -> int:
    """Adds the ledger's spend of this month (and today) to the budget counters; returns rows used (0 when a
    shared table was already seeded by another worker)."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = await ledger.spend(since=month_start, group_by=("app", "department", "day"))
    today = now.strftime("%Y-%m-%d")
    used = 0
    increments: list[tuple[str, float, float]] = []
    for row in rows:
        cost = float(row["cost_usd"] or 0.0)
        if cost <= 0:
            continue
        used += 1
        for scope, name in (("applications", row["app"]), ("departments", row["department"])):
            increments.append((budget_key(scope, name, "month", now), cost, PERIOD_TTL_S["month"]))
            if row["day"] == today:
                increments.append((budget_key(scope, name, "day", now), cost, PERIOD_TTL_S["day"]))
    return used if store.seed(increments) else 0


class BudgetStage(Stage):
    """Reserves the worst-case cost of the routed chain before forwarding; settles the actual after."""

    name = "budgets"

    def __init__(
        self, store: StateStore, catalogue: Catalogue, reservation_ttl_s: float = 300.0, ledger: Ledger | None = None
    ) -> None:
        self.store = store
        self.awaits_io = store.remote
        self.catalogue = catalogue
        self.reservation_ttl_s = reservation_ttl_s
        self.ledger = ledger
        self._rid_prefix = os.urandom(8).hex()
        self._rids = itertools.count()
        # by (application, department), per policy snapshot and UTC day
        self._lines: SnapshotMemo[tuple[str, str], tuple[list[tuple[Line, Budget]], tuple[Line, ...]]] = SnapshotMemo()

    def _budget_lines(self, gov: RequestGovernance) -> tuple[list[tuple[Line, Budget]], tuple[Line, ...]]:
        """`budget_lines` for now, built once per (policy snapshot, UTC day, app, department)."""
        t = time.time()
        key = (gov.app.name, gov.department.name)
        found = self._lines.get(gov.policy, key, period=int(t // DAY_S))
        if found is None:
            pairs = budget_lines(gov, datetime.fromtimestamp(t, UTC))
            found = self._lines.put(key, (pairs, tuple(line for line, _ in pairs)))
        return found

    async def start(self) -> None:
        """In-process state (and the workers' shared table) starts empty: refill this month's spend from the
        ledger so a restart keeps it."""
        if isinstance(self.store, MemoryStore | SharedTableStore) and self.ledger is not None:
            await seed_from_ledger(self.store, self.ledger, datetime.now(UTC))

    async def on_routed(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is None or ctx.decision is None or ctx.cached_body is not None:
            return
        pairs, lines = self._budget_lines(gov)
        if not pairs:
            return
        prompt, max_tokens = _prompt_tokens(ctx), ctx.chat.max_tokens
        rid = f"{self._rid_prefix}{next(self._rids):x}"  # unique across replicas (Redis) and restarts
        amount = chain_worst_case(ctx.decision.chain, prompt, max_tokens)
        failed = await self.store.reserve(rid, lines, amount, self.reservation_ttl_s)
        if failed is None:
            gov.reservation = (rid, lines)
            cap_escalation(ctx, self.catalogue, amount)  # never spend past what was reserved
            return
        line, budget = pairs[failed]
        if budget.action == "downgrade":
            for tier, chain in _cheaper_chains(ctx, gov, self.catalogue):
                amount = chain_worst_case(chain, prompt, max_tokens)
                if await self.store.reserve(rid, lines, amount, self.reservation_ttl_s) is None:
                    gov.reservation = (rid, lines)
                    _downgrade(ctx, tier, chain, "budget", line.label)
                    cap_escalation(ctx, self.catalogue, amount)
                    return
        headers = note(ctx, f"budget:block:{line.label}")
        raise BudgetExceeded(
            f"Budget exhausted: {line.label} is ${line.limit:g} and this request could cost more than what is left.",
            headers={**headers, "Retry-After": str(seconds_until_reset(line.label, datetime.now(UTC)))},
        )

    async def on_finish(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is None or gov.reservation is None:
            return
        rid, lines = gov.reservation
        gov.reservation = None
        actual = ctx.cost_usd if ctx.served_by is not None else 0.0
        await self.store.settle(rid, lines, actual)
