"""Failover, retries, escalation, breakers, hedging and the in-flight bound through the real app.

Each failure kind is injected by the fault-injecting fake upstream, for plain and streamed requests; each
test checks the answer, the headers, the breaker state in `/admin/upstreams` and the ledger record.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from fastroute.catalogue import Catalogue
from fastroute.ledger import LedgerRecord, LedgerStage
from fastroute.server.keys import GATEWAY
from fastroute.simulator.demo import demo_catalogue
from fastroute.simulator.upstream import Fault
from tests.conftest import chat_body
from tests.integration.test_bad_input import assert_openai_error

pytestmark = pytest.mark.asyncio
STREAMS = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


async def ask(client: Any, headers: dict[str, str] | None = None, **body: Any) -> tuple[Any, str, float | None]:
    """Posts a chat request; returns (response, answer text, final cost from body or closing SSE comment)."""
    rid = uuid.uuid4().hex
    resp = await client.post("/v1/chat/completions", json=chat_body(**body), headers={"x-request-id": rid,
                                                                                      **(headers or {})})
    raw = await resp.read()
    if resp.status != 200:
        return resp, "", None
    if not body.get("stream"):
        data = orjson.loads(raw)
        return resp, data["choices"][0]["message"]["content"], float(resp.headers["x-fastroute-cost-usd"])
    text, cost = "", None
    for event in raw.split(b"\n\n"):
        if event.startswith(b": x-fastroute-cost-usd="):
            cost = float(event.split(b"=")[1])
        elif event.startswith(b"data: {"):
            chunk = orjson.loads(event[6:])
            assert "error" not in chunk, chunk
            text += "".join(c["delta"].get("content") or "" for c in chunk["choices"])
    assert raw.rstrip().endswith(b"data: [DONE]")
    return resp, text, cost


async def ledger(client: Any, request_id: str) -> list[LedgerRecord]:
    stage = next(s for s in client.app[GATEWAY].stages if isinstance(s, LedgerStage))
    return [r for r in await stage.ledger.records(limit=1000) if r.request_id == request_id]


async def breakers(client: Any) -> dict[str, str]:
    resp = await client.get("/admin/upstreams")
    assert resp.status == 200
    return {name: u["state"] for name, u in (await resp.json())["upstreams"].items()}


async def assert_one_record(client: Any, resp: Any, catalogue: Catalogue, model: str, cost: float | None) -> None:
    records = await ledger(client, resp.headers["x-request-id"])
    assert len(records) == 1
    rec = records[0]
    assert rec.model == model and rec.status == 200
    assert rec.attempts == int(resp.headers["x-fastroute-attempts"])
    expected = catalogue.models[model].cost(rec.prompt_tokens, rec.completion_tokens)
    assert rec.completion_tokens > 0 and rec.cost_usd == pytest.approx(expected, rel=1e-9) and expected > 0
    assert cost == pytest.approx(rec.cost_usd, abs=1e-8)


# 502/503/504 fail over like 500 (tests/integration/test_upstream_failures.py covers each status).
FAILOVER_KINDS: list[tuple[str, Fault, tuple[str, ...]]] = [
    ("reset", Fault("reset"), ("connection",)),
    ("timeout", Fault("hang"), ("timeout",)),
    ("http_500", Fault("status", status=500), ("http_500",)),
    ("malformed", Fault("malformed"), ("malformed", "stream_cut")),
    ("429_long_retry_after", Fault("status", status=429, retry_after="30"), ("rate_limited",)),
    ("401_bad_upstream_key", Fault("status", status=401, message="invalid x-api-key"), ("upstream_auth",)),
]


@STREAMS
@pytest.mark.parametrize(("kind", "fault", "reasons"), FAILOVER_KINDS, ids=[k[0] for k in FAILOVER_KINDS])
async def test_failure_fails_over_to_the_next_deployment(
    make_gateway: Any, upstream: Any, catalogue: Catalogue, kind: str, fault: Fault, reasons: tuple[str, ...],
    stream: bool,
) -> None:
    sim, plan, _ = upstream
    client = await make_gateway(FASTROUTE_UPSTREAM_FIRST_TOKEN_TIMEOUT_S="0.3")
    plan.add(fault)  # the first call (sim-frontier, Anthropic-shaped) fails; the fallback is OpenAI-shaped
    before = sim.stats.requests
    resp, text, cost = await ask(client, model="sim-frontier", stream=stream)
    assert resp.status == 200
    assert text.startswith("[sim-frontier-1]")
    assert resp.headers["x-fastroute-model"] == "sim-frontier-openai"
    assert resp.headers["x-fastroute-attempts"] == "2"
    assert resp.headers["x-fastroute-fallback-reason"] in reasons
    assert sim.stats.requests - before == 2  # no blind retry of the failed deployment
    states = await breakers(client)
    # One failure does not open a breaker; an upstream Retry-After longer than we wait does.
    assert states["sim-frontier"] == ("open" if kind == "429_long_retry_after" else "closed")
    assert states["sim-frontier-openai"] == "closed"
    await assert_one_record(client, resp, catalogue, "sim-frontier-openai", cost)


@STREAMS
async def test_connection_refused_fails_over(make_gateway: Any, upstream: Any, stream: bool) -> None:
    url = upstream[2]
    good = demo_catalogue(url)
    raw = {"providers": {"sim-anthropic": {"kind": "anthropic", "base_url": "http://127.0.0.1:9"}}}
    catalogue = Catalogue.from_mapping(raw, source="test", base=good)  # nothing listens on port 9
    client = await make_gateway(catalogue_override=catalogue)
    resp, text, cost = await ask(client, model="sim-frontier", stream=stream)
    assert resp.status == 200 and text
    assert resp.headers["x-fastroute-fallback-reason"] == "connection"
    assert resp.headers["x-fastroute-model"] == "sim-frontier-openai"
    await assert_one_record(client, resp, catalogue, "sim-frontier-openai", cost)


async def test_stream_cut_before_the_first_chunk_is_invisible(
    gateway: Any, upstream: Any, catalogue: Catalogue
) -> None:
    plan = upstream[1]
    plan.add(Fault("cut", after_chunks=0))
    resp, text, cost = await ask(gateway, model="sim-budget", stream=True)
    # sim-budget is alone in its tier: the cut connection is retried on the same deployment.
    assert resp.status == 200 and text.startswith("[sim-budget-1]")
    assert resp.headers["x-fastroute-attempts"] == "2"
    await assert_one_record(gateway, resp, catalogue, "sim-budget", cost)


@STREAMS
@pytest.mark.parametrize(("status", "reason"), [(429, "rate_limited"), (529, "overloaded")])
async def test_transient_failure_retries_the_same_deployment(
    gateway: Any, upstream: Any, catalogue: Catalogue, status: int, reason: str, stream: bool
) -> None:
    _, plan, _ = upstream
    plan.add(Fault("status", status=status, retry_after="0.3"))
    t0 = time.perf_counter()
    resp, text, cost = await ask(gateway, model="sim-budget", stream=stream)
    assert resp.status == 200 and text
    assert time.perf_counter() - t0 >= 0.3  # Retry-After was honoured
    assert resp.headers["x-fastroute-model"] == "sim-budget"
    assert (resp.headers["x-fastroute-attempts"], resp.headers["x-fastroute-fallback-reason"]) == ("2", reason)
    assert (await breakers(gateway))["sim-budget"] == "closed"
    await assert_one_record(gateway, resp, catalogue, "sim-budget", cost)


NEXT_TIER = {"budget": ("mid", "sim-mid", "sim-mid-1"), "mid": ("frontier", "sim-frontier", "sim-frontier-1")}
UPSTREAM_OF_TIER = {"budget": "sim-budget-1", "mid": "sim-mid-1"}


async def routed_tier(client: Any) -> str:
    """The tier `model: auto` picks for the default prompt (the router may be a trained classifier)."""
    resp, _, _ = await ask(client)
    tier = str(resp.headers["x-fastroute-tier"])
    assert tier in NEXT_TIER, f"the default prompt routes to {tier}; escalation needs a tier above it"
    return tier


@STREAMS
async def test_auto_request_escalates_when_its_tier_fails(
    make_gateway: Any, upstream: Any, catalogue: Catalogue, stream: bool, tmp_path: Path
) -> None:
    _, plan, _ = upstream
    gateway = await make_gateway(FASTROUTE_MODELS_DIR=str(tmp_path))  # no classifier: the length heuristic routes
    tier = await routed_tier(gateway)
    next_tier, next_model, next_upstream = NEXT_TIER[tier]
    plan.add(Fault("status", status=500), model=UPSTREAM_OF_TIER[tier])
    resp, text, cost = await ask(gateway, stream=stream)
    assert resp.status == 200 and text.startswith(f"[{next_upstream}]")
    assert resp.headers["x-fastroute-tier"] == next_tier
    assert "escalated after http_500" in resp.headers["x-fastroute-route-reason"]
    assert resp.headers["x-fastroute-fallback-reason"] == "http_500"
    await assert_one_record(gateway, resp, catalogue, next_model, cost)


@STREAMS
async def test_context_length_error_escalates_to_a_larger_window(
    make_gateway: Any, upstream: Any, stream: bool, tmp_path: Path
) -> None:
    _, plan, url = upstream
    windows = {"sim-budget": 128_000, "sim-mid": 100_000, "sim-frontier": 300_000}
    base = demo_catalogue(url)
    raw = {"models": {name: {"provider": m.provider, "upstream_model": m.upstream_model, "tier": m.tier,
                             "input_cost_per_token": m.input_cost_per_token,
                             "output_cost_per_token": m.output_cost_per_token, "max_input_tokens": windows[name]}
                      for name, m in base.models.items() if name in windows}}
    catalogue = Catalogue.from_mapping(raw, source="test", base=base)
    client = await make_gateway(catalogue_override=catalogue, FASTROUTE_MODELS_DIR=str(tmp_path))
    tier = await routed_tier(client)
    msg = "This model's maximum context length is 128000 tokens."
    plan.add(Fault("status", status=400, message=msg), model=UPSTREAM_OF_TIER[tier])
    resp, text, cost = await ask(client, stream=stream)
    # Only sim-frontier has a larger window than either budget (128k) or mid (100k).
    assert resp.status == 200 and text.startswith("[sim-frontier-1]")
    assert resp.headers["x-fastroute-model"] == "sim-frontier"
    assert resp.headers["x-fastroute-fallback-reason"] == "context_length"
    await assert_one_record(client, resp, catalogue, "sim-frontier", cost)


@STREAMS
async def test_named_model_is_not_escalated(gateway: Any, upstream: Any, stream: bool) -> None:
    _, plan, _ = upstream
    plan.add(Fault("status", status=500), model="sim-budget-1")
    resp, _, _ = await ask(gateway, model="sim-budget", stream=stream)
    assert resp.status == 502
    records = await ledger(gateway, resp.headers["x-request-id"])
    assert len(records) == 1 and records[0].status == 502 and records[0].cost_usd == 0


@STREAMS
async def test_breaker_opens_skips_then_probes_and_closes(
    make_gateway: Any, upstream: Any, catalogue: Catalogue, stream: bool
) -> None:
    sim, plan, _ = upstream
    client = await make_gateway(FASTROUTE_BREAKER_FAILURES="2", FASTROUTE_BREAKER_COOLDOWN_S="0.4")
    for _ in range(2):
        plan.add(Fault("status", status=500))
        resp, _, _ = await ask(client, model="sim-frontier", stream=stream)
        assert resp.status == 200 and resp.headers["x-fastroute-attempts"] == "2"
    assert (await breakers(client))["sim-frontier"] == "open"
    before = sim.stats.requests
    resp, _, cost = await ask(client, model="sim-frontier", stream=stream)
    assert resp.status == 200 and sim.stats.requests - before == 1  # the open deployment was not called
    assert resp.headers["x-fastroute-model"] == "sim-frontier-openai" and resp.headers["x-fastroute-attempts"] == "1"
    await assert_one_record(client, resp, catalogue, "sim-frontier-openai", cost)
    await asyncio.sleep(0.45)
    resp, _, cost = await ask(client, model="sim-frontier", stream=stream)  # the half-open probe succeeds
    assert resp.headers["x-fastroute-model"] == "sim-frontier"
    assert (await breakers(client))["sim-frontier"] == "closed"
    await assert_one_record(client, resp, catalogue, "sim-frontier", cost)


async def test_all_breakers_open_is_a_fast_503_with_retry_after(make_gateway: Any, upstream: Any) -> None:
    _, plan, _ = upstream
    client = await make_gateway(FASTROUTE_BREAKER_FAILURES="1", FASTROUTE_BREAKER_COOLDOWN_S="60")
    plan.add(Fault("status", status=500), times=2)
    assert (await ask(client, model="sim-frontier"))[0].status == 502
    assert set((await breakers(client)).items()) >= {("sim-frontier", "open"), ("sim-frontier-openai", "open")}
    resp, _, _ = await ask(client, model="sim-frontier")
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert_openai_error(await resp.json(), "upstream_unavailable")


async def test_batch_prefers_the_cheapest_deployment(gateway: Any) -> None:
    resp, _, _ = await ask(gateway, headers={"x-fastroute-tier": "frontier", "x-fastroute-latency": "batch"})
    assert resp.headers["x-fastroute-model"] == "sim-frontier-openai"  # $2.5/$10 per M beats $3/$15
    resp, _, _ = await ask(gateway, headers={"x-fastroute-tier": "frontier"})
    assert resp.headers["x-fastroute-model"] == "sim-frontier"


@STREAMS
async def test_realtime_hedges_a_slow_call_and_bills_only_the_winner(
    make_gateway: Any, upstream: Any, catalogue: Catalogue, stream: bool
) -> None:
    _, plan, _ = upstream
    client = await make_gateway(FASTROUTE_HEDGE_MIN_SAMPLES="3", FASTROUTE_HEDGE_MIN_DELAY_S="0.05")
    realtime = {"x-fastroute-latency": "realtime", "x-fastroute-tier": "frontier"}
    for _ in range(6):  # measure the deployments (unmeasured ones are tried first, then the fastest)
        assert (await ask(client, headers=realtime, stream=stream))[0].status == 200
    plan.add(Fault("delay", delay_s=3.0))  # whichever deployment realtime tries first stalls
    t0 = time.perf_counter()
    resp, text, cost = await ask(client, headers=realtime, stream=stream)
    assert time.perf_counter() - t0 < 1.5
    assert resp.status == 200 and text
    assert resp.headers["x-fastroute-hedged"] == "true" and resp.headers["x-fastroute-attempts"] == "2"
    assert resp.headers["x-fastroute-fallback-reason"] == "hedge"
    winner = resp.headers["x-fastroute-model"]
    await assert_one_record(client, resp, catalogue, winner, cost)  # one record, the winner's price


async def test_named_model_stays_first_whatever_the_latency_class(gateway: Any) -> None:
    for latency in ("realtime", "batch"):
        resp, _, _ = await ask(gateway, headers={"x-fastroute-latency": latency}, model="sim-frontier")
        assert resp.headers["x-fastroute-model"] == "sim-frontier"


async def test_mid_stream_failure_records_what_was_streamed(gateway: Any, upstream: Any, catalogue: Catalogue) -> None:
    _, plan, _ = upstream
    plan.add(Fault("cut", after_chunks=6))
    rid = uuid.uuid4().hex
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="sim-budget", stream=True),
                              headers={"x-request-id": rid})
    raw = await resp.read()
    events = [e for e in raw.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]" and b'"error"' in events[-2]
    streamed = "".join(
        c["delta"].get("content") or ""
        for e in events[:-2] if e.startswith(b"data: {")
        for c in orjson.loads(e[6:])["choices"]
    )
    assert streamed
    [rec] = await ledger(gateway, rid)
    assert rec.status == 502 and rec.usage_estimated and rec.completion_tokens > 0
    assert rec.cost_usd == pytest.approx(catalogue.models["sim-budget"].cost(rec.prompt_tokens, rec.completion_tokens))


async def test_in_flight_bound_refuses_at_once_with_retry_after(make_gateway: Any, upstream: Any) -> None:
    _, plan, _ = upstream
    client = await make_gateway(FASTROUTE_MAX_IN_FLIGHT="2")
    plan.add(Fault("delay", delay_s=0.6), times=2)
    slow = [asyncio.create_task(ask(client, model="sim-budget")) for _ in range(2)]
    await asyncio.sleep(0.2)
    t0 = time.perf_counter()
    resp, _, _ = await ask(client, model="sim-budget")
    assert time.perf_counter() - t0 < 0.2  # refused at once, not queued
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert_openai_error(await resp.json(), "overloaded")
    assert await ledger(client, resp.headers["x-request-id"]) == []  # never reached the pipeline
    done = await asyncio.gather(*slow)
    assert [r[0].status for r in done] == [200, 200]
    health = await client.get("/healthz")  # health checks are never refused
    assert health.status == 200
    admin = await (await client.get("/admin/upstreams")).json()
    assert admin["refused"] == 1 and admin["in_flight"] == 0 and admin["max_in_flight"] == 2


async def test_admin_upstreams_needs_the_admin_token_when_set(make_gateway: Any) -> None:
    client = await make_gateway(FASTROUTE_ADMIN_TOKEN="s3cret")
    assert (await client.get("/admin/upstreams")).status == 401
    ok = await client.get("/admin/upstreams", headers={"Authorization": "Bearer s3cret"})
    assert ok.status == 200
    body = await ok.json()
    assert body["upstreams"]["sim-frontier"]["provider"] == "sim-anthropic"
    assert body["shared_state"] == "InProcessBreakerStore"


@STREAMS
async def test_per_deployment_timeout_from_the_catalogue(make_gateway: Any, upstream: Any, stream: bool) -> None:
    _, plan, url = upstream
    raw = {"models": {"sim-frontier": {"provider": "sim-anthropic", "upstream_model": "sim-frontier-1",
                                       "tier": "frontier", "input_cost_per_token": 3e-06,
                                       "output_cost_per_token": 1.5e-05, "first_token_timeout_s": 0.2}}}
    catalogue = Catalogue.from_mapping(raw, source="test", base=demo_catalogue(url))
    client = await make_gateway(catalogue_override=catalogue)  # the global first-token timeout stays 60 s
    plan.add(Fault("hang"))
    t0 = time.perf_counter()
    resp, text, _ = await ask(client, model="sim-frontier", stream=stream)
    assert time.perf_counter() - t0 < 2.0
    assert resp.status == 200 and text
    assert resp.headers["x-fastroute-fallback-reason"] == "timeout"
    assert resp.headers["x-fastroute-model"] == "sim-frontier-openai"


async def test_stream_cost_estimate_is_priced_at_the_deployment_that_answered(
    gateway: Any, upstream: Any, catalogue: Catalogue
) -> None:
    _, plan, _ = upstream

    async def estimate() -> tuple[str, float]:
        resp = await gateway.post("/v1/chat/completions", json=chat_body(model="sim-frontier", stream=True))
        await resp.read()
        return resp.headers["x-fastroute-model"], float(resp.headers["x-fastroute-cost-usd"])

    head_model, head_estimate = await estimate()
    plan.add(Fault("status", status=500))
    fallback_model, fallback_estimate = await estimate()  # same prompt, so the same prompt tokens
    assert (head_model, fallback_model) == ("sim-frontier", "sim-frontier-openai")
    head, fallback = catalogue.models["sim-frontier"], catalogue.models["sim-frontier-openai"]
    ratio = fallback.input_cost_per_token / head.input_cost_per_token
    assert fallback_estimate == pytest.approx(head_estimate * ratio, rel=1e-3) and ratio != 1


@STREAMS
async def test_client_error_is_not_retried_nor_held_against_the_deployment(
    make_gateway: Any, upstream: Any, stream: bool
) -> None:
    sim, plan, _ = upstream
    client = await make_gateway(FASTROUTE_BREAKER_FAILURES="1")
    plan.add(Fault("status", status=400, message="'stop' has too many entries"))
    before = sim.stats.requests
    resp, _, _ = await ask(client, model="sim-frontier", stream=stream)
    assert resp.status == 400 and sim.stats.requests - before == 1
    assert resp.headers["x-fastroute-attempts"] == "1"
    assert (await breakers(client))["sim-frontier"] == "closed"  # even with a threshold of one failure
    [rec] = await ledger(client, resp.headers["x-request-id"])
    assert rec.status == 400 and rec.cost_usd == 0 and rec.attempts == 1
