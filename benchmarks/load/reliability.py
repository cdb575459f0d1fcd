"""Reliability figures: dispatcher overhead (in-process vs Redis breakers) and hedging's effect on tail latency.

Run: `python benchmarks/load/reliability.py [--requests 400] [--concurrency 8]`. Starts a simulated upstream
and the gateway in this process (loopback), so absolute numbers include both; compare the ratios.
- overhead: `x-fastroute-overhead-ms` p50/p99 with breakers in-process vs in a local redis-server.
- hedging: frontier tier (two deployments); 4 % of calls stall 400 ms. Client latency p50/p99 with
  `x-fastroute-latency: standard` (no hedge) vs `realtime` (hedge after p95).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from typing import Any

import aiohttp
from aiohttp import web

from fastroute.server.app import create_app
from fastroute.settings import Settings
from fastroute.simulator.demo import demo_catalogue
from fastroute.simulator.upstream import Fault, SimulatedModel, Simulator

MODELS = {
    name: SimulatedModel(ttft_s=0.02, min_words=20, max_words=30)
    for name in ("sim-budget-1", "sim-mid-1", "sim-frontier-1")
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def drive(url: str, headers: dict[str, str], n: int, concurrency: int) -> tuple[list[float], list[float]]:
    """(client latency ms, fastroute overhead ms) of `n` requests, `concurrency` at a time."""
    latencies: list[float] = []
    overheads: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    body = {"model": "auto", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            async with sem:
                t0 = time.perf_counter()
                async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                    overheads.append(float(resp.headers["x-fastroute-overhead-ms"]))
                latencies.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(one() for _ in range(n)))
    return latencies, overheads


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    proc.terminate()
    return None


async def gateway(sim_url: str, env: dict[str, str]) -> tuple[web.AppRunner, str]:
    data = tempfile.mkdtemp(prefix="fastroute-bench-")
    settings = Settings.from_env({"FASTROUTE_DATA_DIR": data, **env})
    return await serve(create_app(settings, catalogue=demo_catalogue(sim_url)))


async def main(n: int, concurrency: int) -> None:
    rng = random.Random(7)
    stall = {"on": False}

    def tail(flavour: str, body: dict[str, Any]) -> Fault | None:
        return Fault("delay", delay_s=0.4) if stall["on"] and rng.random() < 0.04 else None

    sim_runner, sim_url = await serve(Simulator(dict(MODELS), fault_hook=tail).app())
    frontier = {"x-fastroute-tier": "frontier"}
    try:
        redis = start_redis()
        variants: list[tuple[str, dict[str, str]]] = [("in-process breakers", {})]
        if redis is not None:
            variants.append(("redis breakers", {"FASTROUTE_REDIS_URL": redis[1]}))
        print(f"overhead (x-fastroute-overhead-ms), {n} requests, concurrency {concurrency}")
        for name, env in variants:
            runner, url = await gateway(sim_url, env)
            await drive(url, frontier, 50, concurrency)  # warm up
            _, over = await drive(url, frontier, n, concurrency)
            print(f"  {name:22s} p50 {statistics.median(over):6.3f} ms  p99 {pct(over, 0.99):6.3f} ms")
            await runner.cleanup()
        if redis is not None:
            redis[0].terminate()

        print(f"hedging: 4% of upstream calls stall 400 ms; client latency, {n} requests")
        runner, url = await gateway(sim_url, {"FASTROUTE_HEDGE_MIN_SAMPLES": "20"})
        await drive(url, {**frontier, "x-fastroute-latency": "realtime"}, 100, concurrency)  # learn p95
        stall["on"] = True
        results = {}
        for latency in ("standard", "realtime"):
            lat, _ = await drive(url, {**frontier, "x-fastroute-latency": latency}, n, concurrency)
            results[latency] = lat
            print(
                f"  {latency:9s} p50 {statistics.median(lat):7.1f} ms  p95 {pct(lat, 0.95):7.1f} ms  "
                f"p99 {pct(lat, 0.99):7.1f} ms"
            )
        ratio = pct(results["standard"], 0.99) / pct(results["realtime"], 0.99)
        print(f"  p99 standard / realtime = {ratio:.1f}x")
        await runner.cleanup()
    finally:
        await sim_runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency))
