"""CPU per upstream call: fastroute's lean client (`providers.wire`) vs aiohttp's `ClientSession`.

    python benchmarks/load/client_bench.py [--calls 2000]

One keep-alive connection to the fake upstream (on the other core), calls made one after another,
user and system CPU of this process per call, clients alternated twice so machine noise hits both.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import uvloop
from targets import start_upstream

from fastroute.providers.wire import OriginPool, Timeouts

BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi [n:5]"}]})
HEADERS = {"Content-Type": "application/json"}


async def measure(port: int, calls: int) -> None:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    pool = OriginPool(f"http://127.0.0.1:{port}", 16)
    timeouts = Timeouts(5.0, 60.0, 600.0)
    session = aiohttp.ClientSession()

    async def lean() -> bytes:
        resp = await pool.request("POST", url, BODY, HEADERS, timeouts)
        body = await resp.read()
        resp.release()
        return body

    async def aiohttp_client() -> bytes:
        async with session.post(url, data=BODY, headers=HEADERS) as resp:
            return await resp.read()

    clients: list[tuple[str, Callable[[], Awaitable[bytes]]]] = [("wire", lean), ("aiohttp", aiohttp_client)]
    try:
        for name, call in clients * 2:
            for _ in range(200):
                await call()
            t0, c0 = time.perf_counter(), os.times()
            for _ in range(calls):
                await call()
            c1, wall = os.times(), time.perf_counter() - t0
            user, system = (c1.user - c0.user) / calls * 1e6, (c1.system - c0.system) / calls * 1e6
            print(f"{name:<8} CPU {user + system:5.0f} us/call (user {user:.0f}, system {system:.0f}); "
                  f"wall {wall / calls * 1e6:.0f} us/call")  # fmt: skip
    finally:
        await session.close()
        pool.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    two = (os.cpu_count() or 1) >= 2
    if two:
        os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory(prefix="fastroute-client-") as tmp:
        upstream = start_upstream("1" if two else None, 0.0, Path(tmp) / "upstream.log")
        try:
            uvloop.run(measure(upstream.port, args.calls))
        finally:
            upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
