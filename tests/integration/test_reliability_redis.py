"""Two gateway replicas share circuit-breaker state through a real redis-server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fastroute.simulator.upstream import Fault
from tests.fakes.redis_server import redis_url
from tests.integration.test_reliability import ask, breakers

pytestmark = pytest.mark.asyncio
__all__ = ["redis_url"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_breaker_opened_by_one_replica_is_honoured_by_the_other(
    make_gateway: Any, upstream: Any, redis_url: str, stream: bool
) -> None:
    sim, plan, _ = upstream
    env = {"FASTROUTE_REDIS_URL": redis_url, "FASTROUTE_BREAKER_FAILURES": "2", "FASTROUTE_BREAKER_COOLDOWN_S": "30",
           "FASTROUTE_BREAKER_SYNC_S": "0.2"}
    one = await make_gateway(**env)
    two = await make_gateway(**env)
    plan.add(Fault("status", status=502))
    assert (await ask(one, model="sim-frontier", stream=stream))[0].status == 200
    plan.add(Fault("status", status=502))
    assert (await ask(two, model="sim-frontier", stream=stream))[0].status == 200  # failures add up across replicas
    for replica in (one, two):
        assert (await breakers(replica))["sim-frontier"] == "open"
    await asyncio.sleep(0.25)  # replicas trust a closed breaker for FASTROUTE_BREAKER_SYNC_S between reads
    before = sim.stats.requests
    resp, text, _ = await ask(one, model="sim-frontier", stream=stream)
    assert resp.status == 200 and text and sim.stats.requests - before == 1
    assert resp.headers["x-fastroute-model"] == "sim-frontier-openai"
    admin = await (await two.get("/admin/upstreams")).json()
    assert admin["shared_state"] == "RedisBreakerStore"
    assert admin["upstreams"]["sim-frontier"]["open_for_s"] > 20
