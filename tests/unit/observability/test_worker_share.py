"""Metrics shared across worker processes: one scrape counts every worker's requests, once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fastroute.chat_request import parse_chat_request
from fastroute.observability.metrics import GatewayMetrics
from fastroute.observability.sources import DeploymentHealth
from fastroute.observability.worker_share import WorkerShare
from fastroute.pipeline import RequestContext
from fastroute.providers.base import Usage
from fastroute.routing.decision import RouteDecision
from fastroute.simulator.demo import demo_catalogue

CATALOGUE = demo_catalogue("http://127.0.0.1:1")
DEAD_PID = "4194303"  # above the kernel's default pid_max (4194304 - 1 is never handed out in practice)


def served(metrics: GatewayMetrics, n: int, app: str = "a", started_only: int = 0) -> None:
    for _ in range(n):
        ctx = RequestContext("r", {}, parse_chat_request({"model": "auto", "messages": [
            {"role": "user", "content": "hi"}]}))
        ctx.decision = RouteDecision("mid", (CATALOGUE.models["sim-mid"],), "test")
        ctx.tenant = type(ctx.tenant)(app=app, department="d")
        ctx.served_by, ctx.usage, ctx.cost_usd, ctx.upstream_s = "sim-mid", Usage(10, 5), 0.001, 0.02
        ctx.finished = ctx.started + 0.03
        metrics.request_started()
        metrics.observe(ctx)
    for _ in range(started_only):
        metrics.request_started()  # still in flight


def samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_a_scrape_adds_every_workers_counters_histograms_and_live_in_flight(tmp_path: Path) -> None:
    here, other, dead = (GatewayMetrics(CATALOGUE.models) for _ in range(3))
    here.share = WorkerShare(tmp_path, str(os.getpid()))
    other.share = WorkerShare(tmp_path, "1")  # pid 1 is alive
    dead.share = WorkerShare(tmp_path, DEAD_PID)
    served(here, 3, started_only=1)
    served(other, 4, app="b", started_only=2)
    served(dead, 5, started_only=7)
    other.publish()
    dead.publish()
    here.health = [DeploymentHealth("sim-mid", "open")]
    got = samples(here)
    req = "fastroute_requests_total"
    labels = (("app", "a"), ("department", "d"), ("model", "sim-mid"), ("status", "200"), ("tier", "mid"))
    assert got[(req, labels)] == 3 + 5  # this worker's live counts + the dead worker's last published ones
    assert got[(req, tuple(sorted({**dict(labels), "app": "b"}.items())))] == 4
    assert got[("fastroute_upstream_seconds_count", (("model", "sim-mid"),))] == 12
    assert got[("fastroute_upstream_seconds_sum", (("model", "sim-mid"),))] == pytest.approx(12 * 0.02)
    assert got[("fastroute_cost_usd_total", (("app", "a"), ("department", "d"), ("model", "sim-mid"),
                                             ("tier", "mid")))] == pytest.approx(8 * 0.001)
    assert got[("fastroute_requests_in_flight", ())] == 1 + 2  # a dead worker has nothing in flight
    assert got[("fastroute_breaker_state", (("deployment", "sim-mid"),))] == 2  # the scraper's, not summed


def test_publishing_again_replaces_a_workers_numbers_instead_of_adding_them(tmp_path: Path) -> None:
    here, other = GatewayMetrics(CATALOGUE.models), GatewayMetrics(CATALOGUE.models)
    here.share, other.share = WorkerShare(tmp_path, "here-x"), WorkerShare(tmp_path, "1")
    served(other, 2)
    other.publish()
    served(other, 3)
    other.publish()
    other.publish()
    got = samples(here)
    assert sum(v for (name, _), v in got.items() if name == "fastroute_requests_total") == 5
    assert not list(tmp_path.glob("*.tmp"))


def test_without_sharing_a_worker_reports_only_itself(tmp_path: Path) -> None:
    here, other = GatewayMetrics(CATALOGUE.models), GatewayMetrics(CATALOGUE.models)
    other.share = WorkerShare(tmp_path, "1")
    served(here, 2)
    served(other, 3)
    other.publish()
    got = samples(here)
    assert sum(v for (name, _), v in got.items() if name == "fastroute_requests_total") == 2
