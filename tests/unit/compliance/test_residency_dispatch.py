"""The dispatcher under a residency predicate: tries, retries and escalations stay inside the allowed set."""

from __future__ import annotations

import pytest

from fastroute.compliance.policy import AppCompliance, deployment_filter
from fastroute.errors import UpstreamError
from tests.unit.reliability.test_dispatcher import CAT, Script, context, err, make

EU_ONLY = deployment_filter(AppCompliance(allowed_regions=frozenset({"eu"})), CAT)
US_ONLY = deployment_filter(AppCompliance(allowed_regions=frozenset({"us"})), CAT)


async def test_failover_skips_deployments_outside_the_allowed_regions() -> None:
    d, _ = make()
    script = Script()
    ctx = context("frontier")
    ctx.deployment_allowed = EU_ONLY
    result = await d.complete(ctx, script)
    assert result.body == {"served": "sim-frontier-openai"} and script.calls == ["sim-frontier-openai"]


async def test_escalation_never_reaches_a_disallowed_deployment() -> None:
    d, _ = make()
    failing = [err("http_500")] * 20
    script = Script(sim_budget=failing, sim_mid=failing, sim_frontier_openai=failing)
    ctx = context("budget")
    ctx.deployment_allowed = EU_ONLY
    with pytest.raises(UpstreamError):
        await d.complete(ctx, script)
    assert "sim-frontier" not in script.calls  # the US deployment was never tried
    assert {"sim-budget", "sim-mid", "sim-frontier-openai"} <= set(script.calls)


async def test_a_tier_with_nothing_allowed_says_so() -> None:
    d, _ = make()
    script = Script()
    ctx = context("budget", headers={"x-fastroute-tier": "budget"})  # forced: no escalation
    ctx.deployment_allowed = US_ONLY
    with pytest.raises(UpstreamError) as e:
        await d.complete(ctx, script)
    assert e.value.reason == "policy_excluded" and script.calls == []
