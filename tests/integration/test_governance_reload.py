"""Live policy reload under load: a file edit applies within a second, no request fails because of it,
and an invalid edit is rejected with a clear log line while the last valid policy stays."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from fastroute.simulator.upstream import Fault, Simulator
from tests.conftest import GatewayFactory, chat_body
from tests.fakes.upstream import FaultPlan

POLICY = "require_app: true\napplications:\n  alpha:\n    allowed_tiers: [{tier}]\n"


async def test_file_edit_applies_within_a_second_while_requests_are_in_flight(
    make_gateway: GatewayFactory,
    upstream: tuple[Simulator, FaultPlan, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fastroute.governance")
    _, plan, _ = upstream
    plan.add(Fault("delay", delay_s=0.05), times=100_000)  # every call is in flight for 50 ms
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(tier="budget"))
    client = await make_gateway(FASTROUTE_POLICY=str(path))
    results: list[tuple[float, float, int, str | None]] = []
    stop = asyncio.Event()

    async def worker() -> None:
        headers = {"x-fastroute-app": "alpha", "x-fastroute-tier": "frontier"}
        while not stop.is_set():
            t0 = time.perf_counter()
            r = await client.post("/v1/chat/completions", json=chat_body(), headers=headers)
            await r.read()
            results.append((t0, time.perf_counter(), r.status, r.headers.get("x-fastroute-tier")))

    workers = [asyncio.create_task(worker()) for _ in range(6)]
    await asyncio.sleep(0.5)
    t_edit = time.perf_counter()
    path.write_text(POLICY.format(tier="mid"))
    await asyncio.sleep(1.5)
    t_bad = time.perf_counter()
    path.write_text(POLICY.format(tier="turbo"))
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*workers)

    assert results and all(status == 200 for _, _, status, _ in results), {s for _, _, s, _ in results}
    before = [tier for _, end, _, tier in results if end < t_edit]
    settled = [tier for start, _, _, tier in results if start > t_edit + 1.0]
    after_bad = [tier for start, _, _, tier in results if start > t_bad + 0.5]
    assert before and set(before) == {"budget"}
    assert settled and set(settled) == {"mid"}  # new rules within 1 s of the edit
    assert after_bad and set(after_bad) == {"mid"}  # the invalid edit changed nothing
    in_flight = [r for r in results if r[0] < t_edit < r[1]]
    assert in_flight  # some requests straddled the reload, and (above) none failed
    rejected = [r.getMessage() for r in caplog.records if "policy reload rejected" in r.getMessage()]
    assert len(rejected) == 1
    assert str(path) in rejected[0] and "applications.alpha.allowed_tiers[0]" in rejected[0]
    assert "unknown tier 'turbo'" in rejected[0]
