"""`FASTROUTE_WORKERS=2` against a real `python -m fastroute serve`: two processes share the port, both
serve, a dead worker is replaced, SIGTERM stops them all with exit code 0, the ledger they share holds
one record per request, and without Redis a rate limit holds across both workers (their shared table)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from fastroute.server.workers import CRASH_LOOP_S
from fastroute.simulator.upstream import SimulatedModel, Simulator
from tests.fakes.upstream import serve_config

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc").is_dir(), reason="needs fork and /proc"),
]
BUSY = SimulatedModel(min_words=20, max_words=30)


@pytest.fixture
async def simulator() -> AsyncIterator[str]:
    runner = web.AppRunner(Simulator({"sim-budget-1": BUSY, "sim-mid-1": BUSY, "sim-frontier-1": BUSY}).app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def ledger_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute("SELECT count(*) FROM requests").fetchone()[0]
    return count


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


async def burst(url: str, n: int, headers: dict[str, str] | None = None) -> list[int]:
    """`n` requests, each on a fresh connection (so the kernel picks a worker for each)."""
    body = {"model": "auto", "messages": [{"role": "user", "content": "Say something about workers."}]}
    statuses = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        sem = asyncio.Semaphore(8)

        async def one() -> None:
            async with sem, session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp:
                await resp.read()
                statuses.append(resp.status)

        await asyncio.gather(*(one() for _ in range(n)))
    return statuses


async def requests_counted(url: str) -> float:
    """`fastroute_requests_total` summed over every label, from one scrape on a fresh connection."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        async with session.get(f"{url}/metrics") as resp:
            text = await resp.text()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "fastroute_requests_total")  # fmt: skip


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, config: dict[str, object]) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`python -m fastroute serve` with 2 workers on `config`: (the supervisor process, its URL)."""
    path = tmp_path / "fastroute.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "FASTROUTE_CONFIG": str(path),
        "FASTROUTE_DATA_DIR": str(tmp_path / "data"),
        "FASTROUTE_PORT": "0",
        "FASTROUTE_WORKERS": "2",
        "FASTROUTE_LOG_LEVEL": "warning",
        "FASTROUTE_REQUEST_LOG": "off",
    }
    env.pop("FASTROUTE_REDIS_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fastroute", "serve", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(90):
            while True:
                line = (await proc.stdout.readline()).decode()
                output.append(line)
                if not line:
                    code = await proc.wait()
                    raise AssertionError(f"fastroute serve exited (code {code}) before ready:\n{''.join(output)}")
                if line.startswith("fastroute listening on "):
                    break
        yield proc, line.split()[-1]
    finally:
        if proc.returncode is None:
            for pid in children(proc.pid):  # workers first: they hold the output pipe open
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.kill()
            await proc.wait()


async def test_two_workers_share_the_port_respawn_and_stop(tmp_path: Path, simulator: str) -> None:
    async with serving(tmp_path, serve_config(simulator)) as (proc, url):
        ready_at = time.monotonic()
        workers = children(proc.pid)
        assert len(workers) == 2
        before = {pid: cpu_ticks(pid) for pid in workers}
        assert await burst(url, 300) == [200] * 300
        used = {pid: cpu_ticks(pid) - before[pid] for pid in workers}
        total = sum(used.values())
        assert total > 0
        assert all(u > 0.15 * total for u in used.values()), f"connections not spread across workers: {used}"
        # Whichever worker answers a scrape, /metrics counts both workers' requests (published each second).
        await asyncio.sleep(1.5)
        assert {await requests_counted(url) for _ in range(6)} == {300.0}

        # A worker that dies (after the crash-loop window) is replaced, and service goes on.
        await asyncio.sleep(max(0.0, CRASH_LOOP_S + 0.5 - (time.monotonic() - ready_at)))
        os.kill(workers[0], signal.SIGKILL)
        async with asyncio.timeout(60):
            while True:
                now = children(proc.pid)
                if len(now) == 2 and workers[0] not in now:
                    break
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the new worker builds its app before it listens
        assert await burst(url, 40) == [200] * 40

        replaced = children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
        assert not any(alive(pid) for pid in replaced)
        # Shared state: both workers (and the replacement) append to one ledger, and nothing is lost.
        assert ledger_rows(tmp_path / "data" / "ledger.sqlite3") == 340


async def test_a_rate_limit_holds_across_workers_without_redis(tmp_path: Path, simulator: str) -> None:
    config = serve_config(simulator)
    config["policy"] = {"applications": {"limited": {"rpm": 30}}}
    async with serving(tmp_path, config) as (proc, url):
        workers = children(proc.pid)
        before = {pid: cpu_ticks(pid) for pid in workers}
        statuses = await burst(url, 80, headers={"x-fastroute-app": "limited"})
        assert all(cpu_ticks(pid) > before[pid] for pid in workers)  # both workers took requests
        # One sliding minute of 30 for the application, whichever worker answered (each alone would allow 30).
        assert statuses.count(200) == 30
        assert statuses.count(429) == 50
