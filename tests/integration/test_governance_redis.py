"""Two real gateway processes share one budget through a real redis-server: 256 concurrent requests
against a budget worth ~50 never overspend by more than one request, and a policy PUT to one replica
reaches the other within a second."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from fastroute.simulator.upstream import SimulatedModel
from tests.fakes.redis_server import redis_url
from tests.fakes.upstream import FAST_MODELS, fake_upstream

__all__ = ["redis_url"]
ADMIN = {"Authorization": "Bearer admin-secret"}
BASE_POLICY = "applications:\n  probe: {}\n"


def catalogue_yaml(base: str) -> dict[str, Any]:
    def model(upstream: str, tier: str, inp: float, out: float) -> dict[str, Any]:
        return {"provider": "sim", "upstream_model": upstream, "tier": tier, "input_cost_per_token": inp,
                "output_cost_per_token": out, "max_input_tokens": 128000, "max_output_tokens": 4096}

    return {
        "replace_catalogue": True,
        "providers": {"sim": {"kind": "openai", "base_url": f"{base}/v1"}},
        "models": {
            "sim-budget": model("sim-budget-1", "budget", 1.5e-7, 6e-7),
            "sim-mid": model("sim-mid-1", "mid", 8e-7, 4e-6),
            "sim-frontier": model("sim-frontier-1", "frontier", 3e-6, 1.5e-5),
        },
        "tiers": {"budget": ["sim-budget"], "mid": ["sim-mid"], "frontier": ["sim-frontier"]},
    }


async def start_gateway(env: dict[str, str], log: Path) -> tuple[asyncio.subprocess.Process, str]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("FASTROUTE_")}
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fastroute", "serve", env={**base_env, **env},
            stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("gateway exited before listening")
                if "listening on" in line:
                    return proc, line.rsplit(" ", 1)[1].strip().rstrip("/")
    except BaseException:
        proc.kill()
        await proc.wait()
        raise


@pytest.fixture
async def replicas(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[list[str], str]]:
    sim, _ = fake_upstream({name: SimulatedModel(ttft_s=0.05) for name in FAST_MODELS})
    server = TestServer(sim.app())
    await server.start_server()
    config = tmp_path / "catalogue.yaml"
    config.write_text(yaml.safe_dump(catalogue_yaml(str(server.make_url("")).rstrip("/"))))
    policy = tmp_path / "policy.yaml"
    policy.write_text(BASE_POLICY)
    procs: list[asyncio.subprocess.Process] = []
    try:
        starts = [
            start_gateway({
                "FASTROUTE_CONFIG": str(config), "FASTROUTE_POLICY": str(policy), "FASTROUTE_REDIS_URL": redis_url,
                "FASTROUTE_PORT": "0", "FASTROUTE_DATA_DIR": str(tmp_path / f"data{i}"),
                "FASTROUTE_ADMIN_TOKEN": "admin-secret", "FASTROUTE_LOG_LEVEL": "warning",
            }, tmp_path / f"gateway{i}.log")
            for i in range(2)
        ]
        started = await asyncio.gather(*starts)
        procs = [p for p, _ in started]
        yield [url for _, url in started], redis_url
    finally:
        for p in procs:
            if p.returncode is None:
                p.terminate()
        for p in procs:
            try:
                async with asyncio.timeout(15):
                    await p.wait()
            except TimeoutError:
                p.kill()
        await server.close()


async def chat(session: aiohttp.ClientSession, url: str, app: str, i: int) -> tuple[int, float]:
    body = {"model": "auto", "max_tokens": 100,
            "messages": [{"role": "user", "content": f"Question {i}: what is the capital of France?"}]}
    headers = {"x-fastroute-app": app, "x-fastroute-tier": "mid"}
    async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as r:
        await r.read()
        return r.status, float(r.headers.get("x-fastroute-cost-usd", "0"))


async def test_two_replicas_share_one_budget_through_redis(replicas: tuple[list[str], str]) -> None:
    urls, _ = replicas
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        status, unit = await chat(session, urls[0], "probe", -1)
        assert status == 200 and unit > 0
        budget = round(50 * unit, 8)
        new_policy = BASE_POLICY + f"  shared:\n    budgets: {{daily_usd: {budget}, action: block}}\n"
        t0 = time.perf_counter()
        async with session.put(f"{urls[0]}/admin/policy", data=new_policy, headers=ADMIN) as r:
            assert r.status == 200
            digest = (await r.json())["digest"]
        while True:  # the other replica gets it through Redis
            async with session.get(f"{urls[1]}/admin/policy", headers=ADMIN) as r:
                if (await r.json())["digest"] == digest:
                    break
            assert time.perf_counter() - t0 < 1.0, "policy did not reach the other replica within 1 s"
            await asyncio.sleep(0.02)

        results = await asyncio.gather(*(chat(session, urls[i % 2], "shared", i) for i in range(256)))
        statuses = [s for s, _ in results]
        assert set(statuses) <= {200, 429}, sorted(set(statuses))
        served = [c for s, c in results if s == 200]
        refused = statuses.count(429)
        assert served and refused and len(served) + refused == 256
        total = sum(served)
        assert total <= budget + max(served) + 1e-9, (total, budget, len(served))
        assert len(served) >= 25  # the budget is actually usable, not refused wholesale
        print(f"budget={budget:.6f} settled={total:.6f} served={len(served)} refused={refused} max={max(served):.6f}")

        # A replica settles a request's reservation right after sending its answer, so the last few may still
        # be settling when the client has every answer: every reservation is settled or released within 2 s.
        deadline = time.perf_counter() + 2.0
        while True:
            async with session.get(f"{urls[1]}/admin/budgets", headers=ADMIN) as r:
                level = next(b for b in (await r.json())["data"] if b["name"] == "shared" and b["period"] == "day")
            if level["reserved_usd"] == pytest.approx(0, abs=1e-9) or time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.02)
        assert level["reserved_usd"] == pytest.approx(0, abs=1e-9)  # every reservation settled or released
        assert level["spent_usd"] == pytest.approx(total, rel=1e-6)

        recorded = {"requests": 0, "served": 0, "blocked": 0, "cost_usd": 0.0}
        for url in urls:
            async with session.get(f"{url}/admin/spend?app=shared&group_by=app", headers=ADMIN) as r:
                for row in (await r.json())["data"]:
                    for k in recorded:
                        recorded[k] += row[k]
        assert recorded["requests"] == 256
        assert recorded["served"] == len(served) and recorded["blocked"] == refused
        assert recorded["cost_usd"] == pytest.approx(total, rel=1e-6)
