"""The front door end to end: plain and streamed completions through both adapters, headers, cost."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import chat_body

pytestmark = pytest.mark.asyncio


async def _sse(resp: Any) -> tuple[list[dict[str, Any]], list[bytes]]:
    raw = await resp.read()
    events = [e for e in raw.split(b"\n\n") if e]
    chunks = [orjson.loads(e[6:]) for e in events if e.startswith(b"data: ") and e != b"data: [DONE]"]
    return chunks, events


@pytest.mark.parametrize("model", ["sim-budget", "sim-frontier"])  # OpenAI-shaped and Anthropic-shaped upstreams
async def test_plain_completion_has_answer_headers_and_exact_cost(gateway: Any, catalogue: Any, model: str) -> None:
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model=model))
    assert resp.status == 200
    body = await resp.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    entry = catalogue.models[model]
    expected = (
        usage["prompt_tokens"] * entry.input_cost_per_token + usage["completion_tokens"] * entry.output_cost_per_token
    )
    assert float(resp.headers["x-fastroute-cost-usd"]) == pytest.approx(expected, abs=1e-8)
    assert resp.headers["x-fastroute-model"] == model
    assert resp.headers["x-fastroute-tier"] == entry.tier
    assert len(resp.headers["x-request-id"]) >= 16
    assert float(resp.headers["x-fastroute-overhead-ms"]) >= 0


async def test_request_id_is_echoed_when_the_client_sends_one(gateway: Any) -> None:
    resp = await gateway.post("/v1/chat/completions", json=chat_body(), headers={"x-request-id": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize("model", ["sim-budget", "sim-frontier"])
async def test_streamed_completion_relays_chunks_and_ends_with_done(gateway: Any, upstream: Any, model: str) -> None:
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model=model, stream=True))
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["x-fastroute-model"] == model
    assert "x-fastroute-cost-usd" in resp.headers
    chunks, events = await _sse(resp)
    assert events[-1] == b"data: [DONE]"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    # The plain answer for the same prompt is the same deterministic text.
    plain = await (await gateway.post("/v1/chat/completions", json=chat_body(model=model))).json()
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # The usage chunk fastroute asked for upstream is not shown to a client that did not ask for it.
    assert all(c["choices"] for c in chunks)


async def test_stream_usage_chunk_when_client_asks(gateway: Any) -> None:
    for model in ("sim-budget", "sim-frontier"):
        body = chat_body(model=model, stream=True, stream_options={"include_usage": True})
        chunks, _ = await _sse(await gateway.post("/v1/chat/completions", json=body))
        last = chunks[-1]
        assert last["choices"] == []
        assert last["usage"]["completion_tokens"] > 0 and last["usage"]["prompt_tokens"] > 0


async def test_auto_routes_short_prompt_cheaper_than_long_one(gateway: Any) -> None:
    short = await gateway.post("/v1/chat/completions", json=chat_body("Hi"))
    long_prompt = "Explain in depth, step by step, with proofs: " + "why does the algorithm converge? " * 400
    long_ = await gateway.post("/v1/chat/completions", json=chat_body(long_prompt))
    tiers = ("budget", "mid", "frontier")
    assert tiers.index(short.headers["x-fastroute-tier"]) < tiers.index(long_.headers["x-fastroute-tier"])
    assert short.headers["x-fastroute-route-reason"]


async def test_tier_headers_force_and_cap(gateway: Any) -> None:
    forced = await gateway.post("/v1/chat/completions", json=chat_body("Hi"), headers={"x-fastroute-tier": "frontier"})
    assert forced.headers["x-fastroute-tier"] == "frontier"
    long_prompt = "why does the algorithm converge? " * 600
    capped = await gateway.post(
        "/v1/chat/completions", json=chat_body(long_prompt), headers={"x-fastroute-max-tier": "budget"}
    )
    assert capped.headers["x-fastroute-tier"] == "budget"
    assert "capped" in capped.headers["x-fastroute-route-reason"]


async def test_anthropic_upstream_receives_translated_request(gateway: Any, upstream: Any) -> None:
    sim = upstream[0]
    body = {
        "model": "sim-frontier",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
        ],
        "max_tokens": 50,
        "stop": "END",
        "temperature": 1.5,
    }
    resp = await gateway.post("/v1/chat/completions", json=body)
    assert resp.status == 200
    sent = sim.stats.bodies[-1]
    assert sent["system"] == "Be terse."
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["max_tokens"] == 50
    assert sent["stop_sequences"] == ["END"]
    assert sent["temperature"] == 1.0  # Anthropic's range is 0..1
    assert sent["model"] == "sim-frontier-1"


async def test_models_health_ready(gateway: Any, catalogue: Any) -> None:
    models = await (await gateway.get("/v1/models")).json()
    ids = {m["id"] for m in models["data"]}
    assert ids == {"auto", *catalogue.models}
    assert (await gateway.get("/healthz")).status == 200
    ready = await gateway.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"


EVERYDAY = [
    "What is the capital of France?",
    "Give me three names for a cat.",
    "Write a polite reply to a customer asking where their parcel is.",
    "Classify the sentiment of this review: 'The delivery was late but the product is great.'",
    "Summarise in two sentences: revenue grew 12% while costs fell 3%.",
    "Design a distributed rate limiter on Redis; discuss failure modes and clock skew.",
    "Review this Python function for bugs and suggest unit tests: def median(xs): xs.sort(); return xs[len(xs)//2]",
    "Prove that there are infinitely many primes, step by step.",
]


async def test_frontier_share_holds_on_live_traffic(make_gateway: Any) -> None:
    gateway = await make_gateway(FASTROUTE_FRONTIER_SHARE="0.2", FASTROUTE_ALLOW_TIER_HEADER="true")
    tiers = []
    for i in range(240):
        prompt = f"{EVERYDAY[i % len(EVERYDAY)]} (variant {i})"
        resp = await gateway.post("/v1/chat/completions", json=chat_body(prompt, max_tokens=50))
        assert resp.status == 200
        tiers.append(resp.headers["x-fastroute-tier"])
    after_warmup = tiers[80:]
    share = after_warmup.count("frontier") / len(after_warmup)
    assert 0.1 <= share <= 0.3, share
    assert after_warmup.count("budget") > 0 and after_warmup.count("mid") > 0
