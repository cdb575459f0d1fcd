"""`QualityStage.on_routed`: a demoted tier is raised within policy, the client's cap and the context window."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastroute.chat_request import parse_chat_request
from fastroute.pipeline import RequestContext, Tenant
from fastroute.quality.recalibration import RecalibrationEvent
from fastroute.quality.settings import QualitySettings
from fastroute.quality.shadow import ShadowJob
from fastroute.quality.stage import QualityStage
from fastroute.routing.decision import RouteDecision
from fastroute.simulator.demo import demo_catalogue

CATALOGUE = demo_catalogue("http://127.0.0.1:9")


def stage(tmp_path: Path, *demoted: str) -> QualityStage:
    s = QualityStage(QualitySettings(min_samples=1, window=1), CATALOGUE, tmp_path)
    for tier in demoted:
        s.recalibrator.observe("app", tier, False)
    return s


def ctx(
    tier: str = "budget", model: str = "auto", headers: dict[str, str] | None = None, **kw: object
) -> RequestContext:
    chat = parse_chat_request({"model": model, "messages": [{"role": "user", "content": "hi"}], **kw})
    c = RequestContext(request_id="r", headers=headers or {}, chat=chat, tenant=Tenant(app="app"))
    c.decision = RouteDecision(tier, CATALOGUE.tier_chain(tier), "length heuristic tokens=1", 0.3)
    return c


async def test_raises_a_demoted_tier_one_step(tmp_path: Path) -> None:
    c = ctx()
    await stage(tmp_path, "budget").on_routed(c)
    assert c.decision is not None and c.decision.tier == "mid" and c.decision.score == 0.3
    assert [m.name for m in c.decision.chain] == ["sim-mid"]
    assert c.decision.reason.endswith("quality: budget demoted for app app, raised to mid")
    assert c.decisions == ["quality:raise:budget->mid"]


async def test_two_demoted_tiers_reach_the_frontier(tmp_path: Path) -> None:
    c = ctx()
    await stage(tmp_path, "budget", "mid").on_routed(c)
    assert c.decision is not None and c.decision.tier == "frontier"


@pytest.mark.parametrize(
    ("allowed", "headers", "expected"),
    [
        (frozenset({"budget", "mid"}), {}, "mid"),  # policy stops short of the frontier
        (frozenset({"budget", "frontier"}), {}, "frontier"),  # skips a tier policy forbids
        (frozenset({"budget"}), {}, "budget"),  # policy forbids every higher tier: no change
        (None, {"x-fastroute-max-tier": "mid"}, "mid"),  # the client's cap bounds the raise
        (None, {"x-fastroute-max-tier": "budget"}, "budget"),
        (None, {"x-fastroute-tier": "budget"}, "budget"),  # forced by the client: untouched
    ],
)
async def test_policy_and_client_bounds(
    tmp_path: Path, allowed: frozenset[str] | None, headers: dict[str, str], expected: str
) -> None:
    c = ctx(headers=headers)
    c.allowed_tiers = allowed
    await stage(tmp_path, "budget", "mid").on_routed(c)
    assert c.decision is not None and c.decision.tier == expected
    assert bool(c.decisions) == (expected != "budget")


async def test_named_models_and_other_apps_are_untouched(tmp_path: Path) -> None:
    s = stage(tmp_path, "budget")
    named = ctx(model="sim-budget")
    await s.on_routed(named)
    assert named.decision is not None and named.decision.tier == "budget"
    other = ctx()
    other.tenant = Tenant(app="other")
    await s.on_routed(other)
    assert other.decision is not None and other.decision.tier == "budget"


async def test_no_raise_when_the_higher_tier_cannot_hold_the_request(tmp_path: Path) -> None:
    c = ctx()
    c.chat.max_tokens = CATALOGUE.tier_chain("mid")[0].max_input_tokens + 1  # too big for every mid deployment
    await stage(tmp_path, "budget").on_routed(c)
    assert c.decision is not None and c.decision.tier == "budget"


async def test_disabled_quality_does_nothing(tmp_path: Path) -> None:
    s = QualityStage(QualitySettings(enabled=False), CATALOGUE, tmp_path)
    s.recalibrator.apply(RecalibrationEvent(0.0, "app", "budget", "raise", "shadow", 10, 0.0, 0.0, 0.2, 0.8))
    c = ctx()
    await s.on_routed(c)
    assert c.decision is not None and c.decision.tier == "budget"


class StubShadow:
    """Captures what the stage offers to shadow evaluation."""

    def __init__(self) -> None:
        self.jobs: list[ShadowJob] = []

    def wants(self) -> bool:
        return True

    def offer(self, job: ShadowJob) -> bool:
        self.jobs.append(job)
        return True


def served(c: RequestContext, model: str) -> RequestContext:
    c.served_by = model
    c.response_body = {"choices": [{"message": {"content": "an answer"}}]}
    return c


async def offered(s: QualityStage, c: RequestContext, after_routing: RouteDecision | None = None) -> list[ShadowJob]:
    stub = StubShadow()
    s.shadow = stub  # type: ignore[assignment]
    await s.on_routed(c)
    if after_routing is not None:
        c.decision = after_routing  # e.g. governance downgrading for a budget
    assert c.decision is not None
    await s.on_finish(served(c, c.decision.model.name))
    return stub.jobs


async def test_shadow_measures_the_routed_tier_and_probes_a_demoted_one(tmp_path: Path) -> None:
    (job,) = await offered(stage(tmp_path), ctx())
    assert (job.natural_tier, job.served_tier, job.served_text, job.keep_label) == (
        "budget",
        "budget",
        "an answer",
        True,
    )
    (job,) = await offered(stage(tmp_path, "budget"), ctx())
    assert (job.natural_tier, job.served_tier) == ("budget", "mid")


async def test_a_later_downgrade_is_measured_as_served(tmp_path: Path) -> None:
    c = ctx("mid")
    (job,) = await offered(stage(tmp_path), c, RouteDecision("budget", CATALOGUE.tier_chain("budget"), "down"))
    assert (job.natural_tier, job.served_tier) == ("budget", "budget")


async def test_what_is_never_shadowed(tmp_path: Path) -> None:
    assert await offered(stage(tmp_path), ctx("frontier")) == []  # nothing cheaper to judge
    no_frontier = ctx()
    no_frontier.allowed_tiers = frozenset({"budget", "mid"})
    assert await offered(stage(tmp_path), no_frontier) == []  # policy keeps prompts off the frontier
    failed = ctx()
    failed.status = 502
    assert await offered(stage(tmp_path), failed) == []
    assert await offered(stage(tmp_path), ctx(headers={"x-fastroute-tier": "budget"})) == []  # client's choice
    only = QualityStage(QualitySettings(shadow_apps=frozenset({"tutor"})), CATALOGUE, tmp_path)
    assert await offered(only, ctx()) == []  # not a shadowed application


async def test_prompts_with_detected_pii_are_never_kept_as_labels(tmp_path: Path) -> None:
    c = ctx()
    c.decisions.append("pii:detect:email")
    (job,) = await offered(stage(tmp_path), c)
    assert not job.keep_label
    c = ctx()
    c.decisions.append("pii:redact:email")  # the placeholders are what the model saw: safe to keep
    (job,) = await offered(stage(tmp_path), c)
    assert job.keep_label


async def test_failover_to_another_tier_is_measured_as_served(tmp_path: Path) -> None:
    s = stage(tmp_path)
    stub = StubShadow()
    s.shadow = stub  # type: ignore[assignment]
    c = ctx("budget")
    await s.on_routed(c)
    await s.on_finish(served(c, "sim-mid"))  # the budget deployment failed; the mid one answered
    (job,) = stub.jobs
    assert (job.natural_tier, job.served_tier, job.served_model) == ("mid", "mid", "sim-mid")
    assert s.store._pending[-1][1][5] == "mid"  # the routing record names the tier that answered
