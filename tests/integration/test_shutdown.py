"""SIGTERM under load against a real `python -m fastroute serve`: in-flight requests finish, later ones are
refused before they start, the process exits 0 and the ledger holds exactly one record per completed request."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml
from aiohttp import web

from fastroute.simulator.upstream import SimulatedModel, Simulator
from tests.fakes.upstream import serve_config

pytestmark = pytest.mark.asyncio

SLOW = SimulatedModel(ttft_s=0.3, tokens_per_s=100, min_words=20, max_words=30)  # ~0.5 s per answer


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[Simulator, str]]:
    sim = Simulator({"sim-budget-1": SLOW, "sim-mid-1": SLOW, "sim-frontier-1": SLOW})
    runner = web.AppRunner(sim.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield sim, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def start_gateway(tmp_path: Path, sim_url: str) -> tuple[asyncio.subprocess.Process, str]:
    config = tmp_path / "fastroute.yaml"
    config.write_text(yaml.safe_dump(serve_config(sim_url)))
    env = {
        **os.environ,
        "FASTROUTE_CONFIG": str(config),
        "FASTROUTE_DATA_DIR": str(tmp_path / "data"),
        "FASTROUTE_PORT": "0",
        "FASTROUTE_SHUTDOWN_GRACE_S": "10",
        "FASTROUTE_LOG_LEVEL": "warning",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fastroute", "serve", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(60):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "fastroute serve exited before it was ready:\n" + "".join(seen)
            seen.append(line)
            if line.startswith("fastroute listening on "):
                return proc, line.split()[-1]


async def one_request(session: aiohttp.ClientSession, url: str, stream: bool) -> tuple[str, str]:
    """Returns (request id, outcome): 'completed', 'refused', or a description of anything else."""
    rid = uuid.uuid4().hex
    body = {"model": "auto", "messages": [{"role": "user", "content": f"Tell me about {rid}"}], "stream": stream}
    try:
        async with session.post(f"{url}/v1/chat/completions", json=body, headers={"x-request-id": rid}) as resp:
            raw = await resp.read()
            if resp.status == 503 and orjson.loads(raw)["error"]["code"] == "overloaded":
                return rid, "refused"
            if resp.status != 200:
                return rid, f"status {resp.status}: {raw[:200]!r}"
            if not stream:
                return rid, "completed" if orjson.loads(raw)["choices"][0]["message"]["content"] else "empty"
            ok = raw.rstrip().endswith(b"data: [DONE]") and b'"error"' not in raw
            return rid, "completed" if ok else f"broken stream {raw[-200:]!r}"
    except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as e:
        # No response at all: the connection was refused (or closed before the request was read).
        return rid, "refused" if not isinstance(e, aiohttp.ClientPayloadError) else f"cut: {e}"


async def test_sigterm_under_load_drains_and_loses_no_spend(tmp_path: Path, simulator: tuple[Simulator, str]) -> None:
    sim, sim_url = simulator
    proc, url = await start_gateway(tmp_path, sim_url)
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        assert (await session.get(f"{url}/healthz")).status == 200
        first = [asyncio.create_task(one_request(session, url, stream=i % 2 == 0)) for i in range(24)]
        for _ in range(1000):  # wait until all of them reached the upstream: in flight (answers take ~0.5 s)
            if sim.stats.requests >= 24:
                break
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        later: list[asyncio.Task[tuple[str, str]]] = []
        for i in range(12):  # keep the load on while the gateway drains
            await asyncio.sleep(0.03)
            later.append(asyncio.create_task(one_request(session, url, stream=i % 2 == 1)))
        outcomes = await asyncio.gather(*first, *later)
    async with asyncio.timeout(30):
        code = await proc.wait()
    assert code == 0
    unexpected = [o for _, o in outcomes if o not in ("completed", "refused")]
    assert unexpected == []
    completed = {rid for rid, o in outcomes if o == "completed"}
    assert {rid for rid, o in outcomes[:24] if o == "completed"} == {rid for rid, _ in outcomes[:24]}  # in flight
    assert [o for _, o in outcomes[-6:]] == ["refused"] * 6  # sent 0.2 s or more after SIGTERM
    with sqlite3.connect(tmp_path / "data" / "ledger.sqlite3") as db:
        rows = db.execute("SELECT request_id, status, cost_usd FROM requests").fetchall()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))  # one record per request
    assert set(ids) == completed  # and one per completed request, none for the refused
    assert all(status == 200 and cost > 0 for _, status, cost in rows)
