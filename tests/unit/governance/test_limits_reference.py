"""The cost helpers of `limits` against the straightforward versions they replaced: same allowed tiers,
same worst cases, at random and right at the limits (where a rounding difference would show)."""

from __future__ import annotations

import random

from fastroute.catalogue import TIERS, Catalogue, ModelEntry
from fastroute.chat_request import parse_chat_request
from fastroute.governance.limits import cap_escalation, chain_worst_case, worst_case_cost
from fastroute.pipeline import RequestContext
from fastroute.routing.decision import RouteDecision
from fastroute.routing.router import tier_rank
from fastroute.simulator.demo import demo_catalogue

CAT = demo_catalogue("http://127.0.0.1:1")


def reference_chain_worst_case(chain: tuple[ModelEntry, ...], prompt: int, max_tokens: int | None) -> float:
    return max((worst_case_cost(m, prompt, max_tokens) for m in chain), default=0.0)


def reference_cap(
    allowed_tiers: frozenset[str] | None, tier: str, catalogue: Catalogue, prompt: int, max_tokens: int | None,
    limit: float,
) -> frozenset[str] | None:  # fmt: skip
    allowed = allowed_tiers if allowed_tiers is not None else frozenset(catalogue.tiers)
    keep = frozenset(
        t for t in allowed
        if tier_rank(t) <= tier_rank(tier)
        or reference_chain_worst_case(catalogue.tier_chain(t), prompt, max_tokens) <= limit + 1e-12
    )  # fmt: skip
    return keep if keep != allowed else allowed_tiers


class Analysis:
    def __init__(self, tokens: int) -> None:
        self.tokens = tokens


def test_cap_escalation_and_worst_cases_match_the_reference() -> None:
    rng = random.Random(3)
    subsets: list[frozenset[str] | None] = [None, frozenset(TIERS), frozenset({"budget", "frontier"}), frozenset()]
    for _ in range(3000):
        prompt, max_tokens = rng.randint(0, 200_000), rng.choice((None, 1, rng.randint(1, 20_000)))
        tier = rng.choice(TIERS)
        chains = [CAT.tier_chain(t) for t in TIERS]
        worst = [chain_worst_case(c, prompt, max_tokens) for c in chains]
        assert worst == [reference_chain_worst_case(c, prompt, max_tokens) for c in chains]
        near = [*worst, *(w - 1e-12 for w in worst), *(w * 1.0000001 for w in worst)]  # at the bound
        limit = rng.choice((rng.uniform(0.0, 3.0), *near))
        allowed = rng.choice(subsets)
        chat = parse_chat_request({"model": "auto", "messages": [{"role": "user", "content": "x"}]})
        ctx = RequestContext("r", {}, chat)
        ctx.chat.max_tokens = max_tokens
        ctx.analysis = Analysis(prompt)
        ctx.allowed_tiers = allowed
        ctx.decision = RouteDecision(tier, CAT.tier_chain(tier), "test", None)
        cap_escalation(ctx, CAT, limit)
        expected = reference_cap(allowed, tier, CAT, prompt, max_tokens, limit)
        assert ctx.allowed_tiers == expected
        if expected is allowed:
            assert ctx.allowed_tiers is allowed  # untouched when nothing is dropped
