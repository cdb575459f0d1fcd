"""Pure parts of visibility: label folding, percentiles, failed-deployment attribution, health verdicts,
settings, the request log's content and the stage's tracking of requests no stage saw."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fastroute.catalogue import ModelEntry
from fastroute.chat_request import parse_chat_request
from fastroute.env_values import SettingsError
from fastroute.errors import UpstreamError
from fastroute.observability import ObservabilitySettings, ObservabilityStage
from fastroute.observability.health import UpstreamBoard
from fastroute.observability.latency import LatencySample, LatencyWindow, percentile
from fastroute.observability.metrics import OTHER, GatewayMetrics, LabelFolder
from fastroute.observability.outcome import decision_kind, failed_deployments, token_counts
from fastroute.observability.request_log import RequestLog, context_line
from fastroute.observability.sources import DeploymentHealth, breaker_probe
from fastroute.pipeline import RequestContext
from fastroute.providers.base import Usage
from fastroute.routing.decision import RouteDecision
from fastroute.simulator.demo import demo_catalogue

CATALOGUE = demo_catalogue("http://127.0.0.1:1")


def _model(name: str) -> ModelEntry:
    return CATALOGUE.models[name]


def _ctx(prompt: str = "hello there", *, chain: tuple[str, ...] = ("sim-frontier", "sim-frontier-openai"),
         attempts: int = 1, served: str | None = "sim-frontier", status: int = 200) -> RequestContext:
    ctx = RequestContext("rid-1", {}, parse_chat_request({"model": "auto", "messages": [
        {"role": "user", "content": prompt}]}))
    ctx.prompt_text = prompt
    ctx.decision = RouteDecision("frontier", tuple(_model(n) for n in chain), "test")
    ctx.attempts, ctx.served_by, ctx.status = attempts, served, status
    return ctx


def test_label_folder_caps_open_sets_and_closes_closed_ones() -> None:
    apps = LabelFolder(2)
    assert [apps(v) for v in ("a", "b", "c", "a", "d")] == ["a", "b", OTHER, "a", OTHER]
    models = LabelFolder(0, allowed=["sim-mid"])
    assert (models("sim-mid"), models("made-up")) == ("sim-mid", OTHER)
    assert len(LabelFolder(5)("x" * 500)) == 64


def test_metrics_fold_unbounded_tenants_into_other() -> None:
    metrics = GatewayMetrics(CATALOGUE.models, max_label_values=3)
    for i in range(50):
        ctx = _ctx()
        ctx.tenant = type(ctx.tenant)(app=f"app-{i}", department=f"dept-{i}")
        ctx.finished = ctx.started
        metrics.request_started()
        metrics.observe(ctx)
    text = metrics.render().decode()
    apps = {line.split('app="')[1].split('"')[0] for line in text.splitlines()
            if line.startswith("fastroute_requests_total{")}
    assert apps == {"app-0", "app-1", "app-2", OTHER}


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([], 50, 0.0), ([5.0], 99, 5.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.0), ([float(i) for i in range(1, 101)], 99, 99.0),
    ([float(i) for i in range(1, 101)], 100, 100.0),
])
def test_nearest_rank_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_latency_window_is_bounded_and_filters_by_tenant() -> None:
    window = LatencyWindow(4)
    for i in range(10):
        window.add(LatencySample("a" if i % 2 else "b", "d", i / 1000, i / 10000, 0.0, None))
    assert len(window) == 4
    summary = window.summary(app="a")
    assert summary["window"] == 2 and summary["p99_ms"] == 9.0 and summary["ttft_p50_ms"] == 0.0


def test_failed_deployments_follow_the_chain() -> None:
    assert failed_deployments(_ctx()) == ()
    assert failed_deployments(_ctx(attempts=2, served="sim-frontier-openai")) == ("sim-frontier",)
    assert failed_deployments(_ctx(attempts=2, served=None, status=502)) == ("sim-frontier", "sim-frontier-openai")
    # a retry on the same deployment that then succeeded blames that deployment once
    assert failed_deployments(_ctx(attempts=3, served="sim-frontier")) == ("sim-frontier",)
    assert failed_deployments(_ctx(attempts=0, served=None, status=400)) == ()


def test_cache_hit_tokens_come_from_the_cached_answer() -> None:
    ctx = _ctx(served=None)
    ctx.cached_body = {"usage": {"prompt_tokens": 7, "completion_tokens": 11}}
    assert token_counts(ctx) == (7, 11)
    ctx.usage = Usage(3, 4)
    assert token_counts(ctx) == (3, 4)
    assert decision_kind("pii:redact:email") == "pii:redact" and decision_kind("blocked") == "blocked"


def test_upstream_board_verdicts_and_breaker_state() -> None:
    board = UpstreamBoard(CATALOGUE.models.values(), recent_s=60)
    for ok in (True, True, False):
        board.record("sim-budget", ok, "http_500", now=1000.0)
    board.record("sim-mid", False, "timeout", now=1000.0)
    board.record("sim-frontier", False, "http_500", now=100.0)  # too old to count as recent
    board.record("not-in-catalogue", False, now=1000.0)
    rows = {r["deployment"]: r for r in board.snapshot([DeploymentHealth("sim-frontier-openai", "open")], now=1010)}
    assert rows["sim-budget"]["status"] == "degraded" and rows["sim-budget"]["recent_error_rate_pct"] == 33.3
    assert rows["sim-mid"]["status"] == "failing" and rows["sim-mid"]["last_error"] == "timeout"
    assert rows["sim-frontier"]["status"] == "idle" and rows["sim-frontier"]["errors"] == 1
    assert rows["sim-frontier-openai"]["status"] == "open" and rows["sim-frontier-openai"]["breaker"] == "open"
    assert "not-in-catalogue" not in rows


def test_breaker_probe_reads_a_board_snapshot() -> None:
    class Board:
        def snapshot(self) -> dict[str, str]:
            return {"b": "open", "a": "closed"}

    assert breaker_probe(Board())() == [DeploymentHealth("a", "closed"), DeploymentHealth("b", "open")]


def test_settings_from_env_and_errors_name_the_variable() -> None:
    s = ObservabilitySettings.from_env({"FASTROUTE_METRICS": "off", "FASTROUTE_REQUEST_LOG": "/tmp/x.jsonl",
                                        "FASTROUTE_STATS_LATENCY_WINDOW": "100"})
    assert (s.metrics, s.request_log, s.latency_window, s.log_prompts) == (False, "/tmp/x.jsonl", 100, False)
    with pytest.raises(SettingsError, match="FASTROUTE_STATS_LATENCY_WINDOW"):
        ObservabilitySettings.from_env({"FASTROUTE_STATS_LATENCY_WINDOW": "3"})
    with pytest.raises(SettingsError, match="FASTROUTE_LOG_PROMPTS"):
        ObservabilitySettings.from_env({"FASTROUTE_LOG_PROMPTS": "maybe"})


@pytest.mark.parametrize(
    ("raw", "target"),
    [("false", "off"), ("No", "off"), ("0", "off"), (" ", "off"), ("true", "stderr"), ("stdout", "stdout"),
     ("./logs/false.jsonl", "./logs/false.jsonl")],
)  # fmt: skip
def test_request_log_switch_words_are_not_file_names(raw: str, target: str) -> None:
    assert ObservabilitySettings.from_env({"FASTROUTE_REQUEST_LOG": raw}).request_log == target


def test_request_log_line_never_carries_the_prompt_by_default() -> None:
    ctx = _ctx("my email is jane@example.com", attempts=2, served="sim-frontier-openai")
    ctx.error = None
    ctx.fallback_reason = UpstreamError("x", reason="http_503").reason
    ctx.decisions.append("pii:redact:email")
    ctx.finished = ctx.started + 0.25
    lines: list[bytes] = []
    log = RequestLog("stderr", sink=lines.append)
    log.request(ctx)
    (raw,) = lines
    assert b"jane" not in raw and raw.endswith(b"\n")
    line = orjson.loads(raw)
    assert (line["model"], line["attempts"], line["fallback_reason"]) == ("sim-frontier-openai", 2, "http_503")
    assert line["latency_ms"] == 250.0 and line["decisions"] == ["pii:redact:email"]
    assert "jane@example.com" in context_line(ctx, include_prompt=True)["prompt"]


async def test_stage_tells_refused_bodies_from_pipeline_requests() -> None:
    lines: list[Any] = []
    stage = ObservabilityStage(ObservabilitySettings(), CATALOGUE,
                               log_sink=lambda b: lines.extend(orjson.loads(x) for x in b.splitlines()))
    await stage.start()
    try:
        plain, streamed, failed = _ctx(), _ctx(), _ctx(served=None, status=502)
        plain.request_id, streamed.request_id, failed.request_id = "plain", "streamed", "failed"
        for ctx in (plain, streamed, failed):
            await stage.on_request(ctx)
        stage.response_started("streamed", 200, "/v1/chat/completions")  # stream headers go out mid-pipeline
        for ctx in (plain, streamed, failed):
            ctx.finished = ctx.started
            await stage.on_finish(ctx)
        stage.response_started("plain", 200, "/v1/chat/completions")
        stage.response_started("failed", 502, "/v1/chat/completions")
        stage.response_started("never-parsed", 400, "/v1/chat/completions")
        assert stage._tracked == {}
        assert lines == []  # buffered off the request path...
        stage.log.flush()  # ...until the timer (or close) writes them
        events = [(line["event"], line["request_id"]) for line in lines]
        assert events == [("request", "plain"), ("request", "streamed"), ("request", "failed"),
                          ("rejected", "never-parsed")]
        text = stage.metrics.render().decode()
        assert 'fastroute_rejected_requests_total{status="400"} 1.0' in text
        assert "fastroute_requests_in_flight 0.0" in text
        stats = await stage.stats.snapshot("15m")  # its own in-memory ledger when none is shared
        assert stats["totals"]["requests"] == 3 and stats["totals"]["errors"] == 1
    finally:
        await stage.close()


def test_histogram_buckets_are_cumulative_with_le_semantics() -> None:
    from fastroute.observability.metrics import Hist

    h = Hist((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 1.0, 7.0):
        h.observe(v)
    assert h.buckets() == [("0.1", 2.0), ("1.0", 4.0), ("+Inf", 5.0)]
    assert h.total == pytest.approx(8.65)


def test_cache_guard_rejections_come_from_the_cache_counters() -> None:
    stage = ObservabilityStage(ObservabilitySettings(request_log="off"), CATALOGUE)
    events = {"hit_exact": 4, "miss": 9, "verifier_negation": 2, "verifier_number": 1}
    stage.attach(cache_events=lambda: events)
    text = stage.metrics.render().decode()
    assert 'fastroute_cache_guard_rejections_total{reason="negation"} 2.0' in text
    assert 'fastroute_cache_guard_rejections_total{reason="number"} 1.0' in text
    assert 'fastroute_cache_events_total{event="miss"} 9.0' in text


async def test_concurrent_reports_share_one_ledger_query_set() -> None:
    stage = ObservabilityStage(ObservabilitySettings(request_log="off"), CATALOGUE)
    await stage.start()
    try:
        calls = 0
        spend = stage.ledger.spend

        async def counting_spend(**kwargs: Any) -> list[dict[str, Any]]:
            nonlocal calls
            calls += 1
            return await spend(**kwargs)

        stage.ledger.spend = counting_spend  # type: ignore[method-assign]
        import asyncio

        reports = await asyncio.gather(*(stage.stats.snapshot("24h") for _ in range(5)))
        assert all(r == reports[0] for r in reports)
        assert calls == 2  # the fine-grained breakdown and the series, once for all five
        await stage.stats.snapshot("7d")
        assert calls == 4
    finally:
        await stage.close()


def test_otel_endpoint_must_be_a_url() -> None:
    assert ObservabilitySettings.from_env({}).otel_endpoint is None
    s = ObservabilitySettings.from_env({"FASTROUTE_OTEL_ENDPOINT": "http://collector:4318/v1/traces"})
    assert s.otel_endpoint == "http://collector:4318/v1/traces"
    with pytest.raises(SettingsError, match="FASTROUTE_OTEL_ENDPOINT"):
        ObservabilitySettings.from_env({"FASTROUTE_OTEL_ENDPOINT": "collector:4318"})


def test_recent_decisions_leave_out_informational_ones() -> None:
    stage = ObservabilityStage(ObservabilitySettings(request_log="off"), CATALOGUE)
    only_region, acted = _ctx(), _ctx()
    only_region.decisions.append("region:eu")
    acted.decisions.extend(["region:us", "pii:redact:email"])
    for ctx in (only_region, acted):
        ctx.finished = ctx.started
        stage.stats.record(ctx)
    recent = list(stage.stats._decisions)
    assert [d["decisions"] for d in recent] == [["pii:redact:email"]]
