"""`GET /metrics` after a scripted mix of requests: every counter equals what was sent and answered."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fastroute.catalogue import Catalogue
from fastroute.observability import ObservabilitySettings, ObservabilityStage
from fastroute.pipeline import RequestContext, Stage
from fastroute.simulator.upstream import Fault
from tests.conftest import chat_body

pytestmark = pytest.mark.asyncio
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: Any, **kwargs: Any) -> Samples:
    resp = await client.get("/metrics", **kwargs)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def pick(samples: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of `name` whose labels include `labels`, keyed by their full label set."""
    want = set(labels.items())
    return {k: v for (n, k), v in samples.items() if n == name and want <= set(k)}


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(pick(samples, name, **labels).values())


async def _usage_of(resp: Any, stream: bool) -> dict[str, int]:
    if not stream:
        return dict((await resp.json())["usage"])
    raw = await resp.read()
    chunks = [orjson.loads(e[6:]) for e in raw.split(b"\n\n") if e.startswith(b"data: {")]
    return dict(next(c["usage"] for c in chunks if c.get("usage")))


async def test_counters_match_a_scripted_mix(gateway: Any, upstream: Any, catalogue: Catalogue) -> None:
    _, plan, _ = upstream
    sent: Counter[tuple[str, str, str]] = Counter()  # (tier, model, status) -> requests
    tokens: Counter[tuple[str, str]] = Counter()  # (model, kind) -> tokens
    cost: Counter[str] = Counter()
    counterfactual = 0.0
    ref = catalogue.frontier_reference()

    async def send(model: str, *, stream: bool = False, expect: int = 200, served: str | None = None) -> None:
        nonlocal counterfactual
        body = chat_body(f"Explain item {sum(sent.values())} briefly.", model=model, stream=stream)
        if stream:
            body["stream_options"] = {"include_usage": True}
        resp = await gateway.post("/v1/chat/completions", json=body)
        assert resp.status == expect, await resp.text()
        entry = catalogue.models[model]
        label_model = served or model
        sent[(entry.tier, label_model, str(expect))] += 1
        if expect == 200:
            usage = await _usage_of(resp, stream)
            answered = catalogue.models[label_model]
            tokens[(label_model, "prompt")] += usage["prompt_tokens"]
            tokens[(label_model, "completion")] += usage["completion_tokens"]
            cost[label_model] += answered.cost(usage["prompt_tokens"], usage["completion_tokens"])
            counterfactual += ref.cost(usage["prompt_tokens"], usage["completion_tokens"])
        else:
            await resp.read()

    for _ in range(3):
        await send("sim-budget")
    for _ in range(2):
        await send("sim-mid", stream=True)
    await send("sim-frontier")
    await send("sim-frontier", stream=True)
    # fail-over: the Anthropic deployment fails once, the OpenAI-shaped frontier deployment answers
    plan.add(Fault("status", status=503), model="sim-frontier-1")
    await send("sim-frontier", served="sim-frontier-openai")
    plan.add(Fault("status", status=500), model="sim-frontier-1")
    await send("sim-frontier", stream=True, served="sim-frontier-openai")
    # every deployment fails: 502, no spend
    plan.add(Fault("status", status=500), times=2)
    await send("sim-frontier", expect=502)
    # an upstream 400 is relayed, not retried
    plan.add(Fault("status", status=400))
    await send("sim-budget", expect=400)
    # bad input that reaches the pipeline (unknown model) and bad input that never does
    resp = await gateway.post("/v1/chat/completions", json=chat_body(model="no-such-model"))
    assert resp.status in (400, 404)
    unknown_status = str(resp.status)
    json_type = {"Content-Type": "application/json"}
    assert (await gateway.post("/v1/chat/completions", data=b"{not json", headers=json_type)).status == 400
    text_type = {"Content-Type": "text/plain"}
    assert (await gateway.post("/v1/chat/completions", data=b"{}", headers=text_type)).status == 415

    m = await scrape(gateway)
    got = {
        (dict(k)["tier"], dict(k)["model"], dict(k)["status"]): v
        for k, v in pick(m, "fastroute_requests_total").items()
    }
    expected = {k: float(v) for k, v in sent.items()}
    expected[("none", "none", unknown_status)] = 1.0
    assert got == expected
    for (model, kind), n in tokens.items():
        assert total(m, "fastroute_tokens_total", model=model, kind=kind) == n
    assert total(m, "fastroute_tokens_total") == sum(tokens.values())
    for model, usd in cost.items():
        assert total(m, "fastroute_cost_usd_total", model=model) == pytest.approx(usd, rel=1e-9)
    assert total(m, "fastroute_cost_usd_total") == pytest.approx(sum(cost.values()), rel=1e-9)
    assert total(m, "fastroute_counterfactual_cost_usd_total") == pytest.approx(counterfactual, rel=1e-9)
    # failed upstream calls: two fail-overs and the all-failing request (both deployments), one relayed 400
    assert total(m, "fastroute_upstream_attempts_total", deployment="sim-frontier", outcome="error") == 3
    assert total(m, "fastroute_upstream_attempts_total", deployment="sim-frontier-openai", outcome="error") == 1
    assert total(m, "fastroute_upstream_attempts_total", deployment="sim-budget", outcome="error") == 1
    ok = sum(v for (tier, model, status), v in sent.items() if status == "200")
    assert total(m, "fastroute_upstream_attempts_total", outcome="ok") == ok
    assert total(m, "fastroute_fallbacks_total") == 2
    assert pick(m, "fastroute_rejected_requests_total") == {(("status", "400"),): 1.0, (("status", "415"),): 1.0}
    assert total(m, "fastroute_requests_in_flight") == 0
    routed = sum(v for (tier, _, _), v in expected.items() if tier != "none")
    assert total(m, "fastroute_overhead_seconds_count") == routed
    assert total(m, "fastroute_route_decision_seconds_count") == routed
    streamed_ok = 4  # 2 mid + 2 frontier streams answered
    assert total(m, "fastroute_upstream_ttft_seconds_count") == streamed_ok
    assert total(m, "fastroute_upstream_seconds_count") == ok
    # no cache configured: nothing counted as a lookup
    assert total(m, "fastroute_cache_lookups_total") == 0


class _AnswerFromMemory(Stage):
    """A stand-in response cache: answers a prompt it has seen before."""

    name = "memory-cache"

    def __init__(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}

    async def on_routed(self, ctx: RequestContext) -> None:
        hit = self.answers.get(ctx.prompt_text)
        ctx.cache_status = "hit-exact" if hit is not None else "miss"
        ctx.cached_body = hit

    async def on_finish(self, ctx: RequestContext) -> None:
        if ctx.cache_status == "miss" and ctx.status == 200 and ctx.usage is not None and not ctx.chat.stream:
            self.answers[ctx.prompt_text] = {
                "id": "cached", "object": "chat.completion", "model": ctx.served_by,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "cached"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": ctx.usage.prompt_tokens,
                          "completion_tokens": ctx.usage.completion_tokens,
                          "total_tokens": ctx.usage.prompt_tokens + ctx.usage.completion_tokens},
            }


async def test_cache_hits_and_misses_and_savings(make_gateway: Any, catalogue: Catalogue) -> None:
    obs = ObservabilityStage(ObservabilitySettings(request_log="off"), catalogue)
    gateway = await make_gateway(stages=[obs, _AnswerFromMemory()])
    usages = []
    for i in range(3):
        resp = await gateway.post("/v1/chat/completions", json=chat_body(f"question {i}", model="sim-mid"))
        assert resp.headers["x-fastroute-cache"] == "miss"
        usages.append((await resp.json())["usage"])
    for i in (0, 1, 0):
        resp = await gateway.post("/v1/chat/completions", json=chat_body(f"question {i}", model="sim-mid"))
        assert resp.headers["x-fastroute-cache"] == "hit-exact"
        await resp.read()
    m = await scrape(gateway)
    assert pick(m, "fastroute_cache_lookups_total") == {
        (("result", "hit-exact"),): 3.0, (("result", "miss"),): 3.0
    }
    mid = catalogue.models["sim-mid"]
    saved = sum(mid.cost(usages[i]["prompt_tokens"], usages[i]["completion_tokens"]) for i in (0, 1, 0))
    assert total(m, "fastroute_cache_saved_usd_total") == pytest.approx(saved, rel=1e-9)
    # cache hits cost nothing, and no upstream was called for them
    paid = sum(mid.cost(u["prompt_tokens"], u["completion_tokens"]) for u in usages)
    assert total(m, "fastroute_cost_usd_total") == pytest.approx(paid, rel=1e-9)
    assert total(m, "fastroute_upstream_attempts_total") == 3
    assert total(m, "fastroute_requests_total", status="200") == 6


async def test_each_app_has_its_own_registry(make_gateway: Any) -> None:
    first, second = await make_gateway(), await make_gateway()
    await (await first.post("/v1/chat/completions", json=chat_body(model="sim-budget"))).read()
    assert total(await scrape(first), "fastroute_requests_total") == 1
    assert total(await scrape(second), "fastroute_requests_total") == 0


async def test_metrics_need_the_admin_token_when_set(make_gateway: Any) -> None:
    gateway = await make_gateway(FASTROUTE_ADMIN_TOKEN="s3cret")
    resp = await gateway.get("/metrics")
    assert resp.status == 401
    assert (await resp.json())["error"]["type"] == "authentication_error"
    assert (await gateway.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    await scrape(gateway, headers={"Authorization": "Bearer s3cret"})
    public = await make_gateway(FASTROUTE_ADMIN_TOKEN="s3cret", FASTROUTE_METRICS_PUBLIC="true")
    await scrape(public)


async def test_metrics_can_be_switched_off(make_gateway: Any) -> None:
    gateway = await make_gateway(FASTROUTE_METRICS="false")
    assert (await gateway.get("/metrics")).status == 404


async def _read_lines(path: Any, n: int) -> bytes:
    """The log file once it holds `n` lines (lines are written in batches, within 0.2 s)."""
    for _ in range(50):
        raw: bytes = path.read_bytes() if path.exists() else b""
        if raw.count(b"\n") >= n:
            return raw
        await asyncio.sleep(0.05)
    return raw


async def test_request_log_has_one_line_per_request_and_no_prompt(make_gateway: Any, tmp_path: Any) -> None:
    path = tmp_path / "requests.jsonl"
    gateway = await make_gateway(FASTROUTE_REQUEST_LOG=str(path))
    secret = "my card is 4111 1111 1111 1111 and mail jane@example.com"
    ok = await gateway.post("/v1/chat/completions", json=chat_body(secret, model="sim-budget"),
                            headers={"x-request-id": "req-ok"})
    await ok.read()
    streamed = await gateway.post("/v1/chat/completions", json=chat_body(secret, model="sim-mid", stream=True),
                                  headers={"x-request-id": "req-stream"})
    await streamed.read()
    bad = await gateway.post("/v1/chat/completions", data=b"[",
                             headers={"x-request-id": "req-bad", "Content-Type": "application/json"})
    assert bad.status == 400
    raw = await _read_lines(path, 3)
    assert b"4111" not in raw and b"jane@" not in raw and b"capital" not in raw
    lines = [orjson.loads(line) for line in raw.splitlines()]
    by_id = {line["request_id"]: line for line in lines}
    assert len(lines) == 3 and set(by_id) == {"req-ok", "req-stream", "req-bad"}
    line = by_id["req-ok"]
    assert (line["app"], line["department"], line["tier"], line["model"]) == ("default", "default", "budget",
                                                                               "sim-budget")
    assert line["status"] == 200 and line["attempts"] == 1 and line["cache"] == "off"
    assert line["cost_usd"] == pytest.approx(float(ok.headers["x-fastroute-cost-usd"]), abs=1e-8)
    assert line["latency_ms"] >= line["overhead_ms"] >= 0
    assert by_id["req-stream"]["stream"] is True and by_id["req-stream"]["completion_tokens"] > 0
    assert by_id["req-bad"]["event"] == "rejected" and by_id["req-bad"]["status"] == 400


async def test_request_log_includes_the_prompt_only_when_asked(make_gateway: Any, tmp_path: Any) -> None:
    path = tmp_path / "debug.jsonl"
    gateway = await make_gateway(FASTROUTE_REQUEST_LOG=str(path), FASTROUTE_LOG_PROMPTS="true")
    await (await gateway.post("/v1/chat/completions", json=chat_body("debug me please"))).read()
    (line,) = [orjson.loads(raw) for raw in (await _read_lines(path, 1)).splitlines()]
    assert "debug me please" in line["prompt"]


async def test_traces_one_span_per_request_with_route_and_upstream_children(
    make_gateway: Any, upstream: Any, catalogue: Catalogue
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from fastroute.observability.tracing import RequestTracer

    _, plan, _ = upstream
    exporter = InMemorySpanExporter()
    tracer = RequestTracer(exporter, service_name="fastroute-test")
    obs = ObservabilityStage(ObservabilitySettings(request_log="off"), catalogue, tracer=tracer)
    gateway = await make_gateway(stages=[obs])
    plan.add(Fault("status", status=503), model="sim-frontier-1")
    resp = await gateway.post("/v1/chat/completions", json=chat_body("trace me", model="sim-frontier"),
                              headers={"x-request-id": "traced-1"})
    assert resp.status == 200
    await resp.read()
    tracer.flush()
    tracer._provider.force_flush()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"POST /v1/chat/completions", "route", "upstream"}
    root = spans["POST /v1/chat/completions"]
    assert root.attributes["fastroute.request_id"] == "traced-1"
    assert root.attributes["fastroute.model"] == "sim-frontier-openai" and root.attributes["fastroute.attempts"] == 2
    assert root.resource.attributes["service.name"] == "fastroute-test"
    for child in ("route", "upstream"):
        assert spans[child].parent.span_id == root.context.span_id
        assert root.start_time <= spans[child].start_time <= spans[child].end_time <= root.end_time
    assert spans["upstream"].attributes["fastroute.fallback_reason"] == "overloaded"
    assert "trace me" not in str([dict(s.attributes) for s in spans.values()])
