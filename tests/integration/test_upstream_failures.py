"""Upstream 4xx/5xx/timeouts/malformed answers/mid-stream cuts/client disconnects, plain and streamed."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from fastroute.simulator.upstream import Fault
from tests.conftest import chat_body
from tests.integration.test_bad_input import assert_openai_error

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_400_is_relayed_not_retried(gateway: Any, upstream: Any, stream: bool) -> None:
    sim, plan, _ = upstream
    plan.add(Fault("status", status=400, message="bad stop sequence"))
    before = sim.stats.requests
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="sim-frontier", stream=stream))
    assert resp.status == 400
    body = await resp.json()
    assert_openai_error(body)
    assert "bad stop sequence" in body["error"]["message"]
    assert sim.stats.requests - before == 1  # not retried on the fallback deployment


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_429_relayed_with_retry_after_when_no_fallback(
    gateway: Any, upstream: Any, stream: bool
) -> None:
    _, plan, _ = upstream
    plan.add(Fault("status", status=429, retry_after="7", message="slow down"))
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="sim-budget", stream=stream))
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "7"
    assert (await resp.json())["error"]["type"] == "upstream_error"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_fails_over_to_next_deployment_invisibly(
    gateway: Any, upstream: Any, status: int, stream: bool
) -> None:
    _, plan, _ = upstream
    plan.add(Fault("status", status=status), model="sim-frontier-1")
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="sim-frontier", stream=stream))
    assert resp.status == 200
    assert resp.headers["x-fastroute-attempts"] == "2"
    assert resp.headers["x-fastroute-model"] == "sim-frontier-openai"
    assert resp.headers["x-fastroute-fallback-reason"]
    raw = await resp.read()
    assert b"error" not in raw


@pytest.mark.parametrize("stream", [False, True])
async def test_all_deployments_failing_is_502(gateway: Any, upstream: Any, stream: bool) -> None:
    _, plan, _ = upstream
    plan.add(Fault("status", status=500), times=2)
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="sim-frontier", stream=stream))
    assert resp.status == 502
    assert_openai_error(await resp.json(), "upstream_error")
    assert resp.headers["x-fastroute-attempts"] == "2"


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_timeout_is_504(make_gateway: Any, upstream: Any, stream: bool) -> None:
    _, plan, _ = upstream
    gateway = await make_gateway(FASTROUTE_UPSTREAM_FIRST_TOKEN_TIMEOUT_S="0.2")
    plan.add(Fault("hang"))
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="sim-budget", stream=stream))
    assert resp.status == 504
    assert_openai_error(await resp.json(), "upstream_timeout")


async def test_malformed_upstream_answer_is_502(gateway: Any, upstream: Any) -> None:
    _, plan, _ = upstream
    plan.add(Fault("malformed"))
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="sim-budget"))
    assert resp.status == 502
    assert "malformed" in (await resp.json())["error"]["message"]


async def test_connection_refused_is_502(make_gateway: Any) -> None:
    from fastroute.simulator.demo import demo_catalogue

    gateway = await make_gateway(catalogue_override=demo_catalogue("http://127.0.0.1:9"))  # nothing listens
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="sim-budget"))
    assert resp.status == 502
    assert_openai_error(await resp.json(), "upstream_error")


@pytest.mark.parametrize("model", ["sim-budget", "sim-frontier"])
async def test_mid_stream_cut_ends_with_explicit_error_event(gateway: Any, upstream: Any, model: str) -> None:
    _, plan, _ = upstream
    plan.add(Fault("cut", after_chunks=4))
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model=model, stream=True))
    assert resp.status == 200  # headers were already sent
    raw = await resp.read()
    events = [e for e in raw.split(b"\n\n") if e and not e.startswith(b":")]
    assert events[-1] == b"data: [DONE]"
    err = orjson.loads(events[-2][6:])
    assert err["error"]["code"] == "upstream_error"
    assert "early" in err["error"]["message"] or "unreachable" in err["error"]["message"]
    # Some content did reach the client before the cut.
    assert any(b'"content"' in e for e in events[:-2])


async def test_client_disconnect_mid_stream_cancels_upstream(make_gateway: Any, upstream: Any) -> None:
    sim = upstream[0]
    sim.models["sim-budget-1"] = type(sim.models["sim-budget-1"])(tokens_per_s=50, min_words=200, max_words=400)
    gateway = await make_gateway()
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="sim-budget", stream=True))
    assert resp.status == 200
    await resp.content.readany()
    resp.close()  # the client walks away mid-stream
    for _ in range(100):
        if sim.stats.client_gone:
            break
        await asyncio.sleep(0.05)
    assert sim.stats.client_gone == 1
    assert sim.stats.completed == 0
    # The gateway still serves.
    assert (await gateway.post("/v1/chat/completions", json=chat_body(model="sim-mid"))).status == 200


async def test_concurrent_requests_batched_through_the_stages_each_get_their_own_outcome(
    gateway: Any, upstream: Any
) -> None:
    # Requests in flight together go through the stages in batches (pipeline/batch.py): a request refused
    # in preparation (unknown model) or failed upstream must not affect the others in its batch.
    from fastroute.server.keys import GATEWAY

    _, plan, _ = upstream
    plan.add(Fault("status", status=400, message="bad stop sequence"))
    bodies = [chat_body(model="no-such-model") if i % 3 == 0 else chat_body(model="sim-frontier") for i in range(12)]
    resps = await asyncio.gather(*(gateway.post("/v1/chat/completions", json=b) for b in bodies))
    statuses = [r.status for r in resps]
    assert [s for i, s in enumerate(statuses) if i % 3 == 0] == [404] * 4
    assert sorted(s for i, s in enumerate(statuses) if i % 3) == [200] * 7 + [400]
    for r in resps:
        body = await r.json()
        if r.status != 200:
            assert_openai_error(body)
    assert gateway.app[GATEWAY].in_flight == 0  # every prepare was matched by its finish
