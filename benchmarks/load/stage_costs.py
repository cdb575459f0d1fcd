"""Where a request's time goes inside fastroute: microseconds per request for every stage hook and step.

    python benchmarks/load/stage_costs.py [--requests 3000] [--stream] [--env FASTROUTE_X=...]

Runs the real app (built by `create_app` from FASTROUTE_* settings, as `fastroute serve` does) in this
process against the fake upstream, one request at a time, with each stage hook, the analysis, the router
and the upstream call wrapped in a timer. One connection means no other request runs during a hook, so
wall time inside a hook is its cost. The rest of the request (aiohttp server, handler) is reported as
"unattributed". A wrapper costs ~0.3 us, small against what it measures.

`--warm-check` calls the analysis and the router a second time right after each served call: the gap between
the two is what cold CPU caches cost inside a real request, which micro-benchmarks (warm loops) never see.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web
from driver import Workload, run_load
from run import parse_env
from targets import bench_config, bench_policy, free_port, start_upstream

from fastroute.server.app import create_app
from fastroute.server.keys import GATEWAY
from fastroute.server.run import settle_heap
from fastroute.settings import Settings

Totals = defaultdict[str, float]


def wrap_async(obj: Any, attr: str, label: str, totals: Totals) -> None:
    inner = getattr(obj, attr)

    @functools.wraps(inner)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return await inner(*args, **kwargs)
        finally:
            totals[label] += time.thread_time() - t0

    setattr(obj, attr, timed)


class TimedProxy:
    """Stands in for a slotted object whose method cannot be replaced: times one method, forwards the rest."""

    def __init__(self, inner: Any, method: str, label: str, totals: Totals, *, warm_check: bool = False) -> None:
        self._inner, self._method, self._label, self._totals = inner, method, label, totals
        self._warm_check = warm_check

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name != self._method:
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return value(*args, **kwargs)
            finally:
                t1 = time.thread_time()
                self._totals[self._label] += t1 - t0
                if self._warm_check:  # the same call again at once: its data and code are now in the CPU caches
                    value(*args, **kwargs)
                    self._totals[self._label + WARM] += time.thread_time() - t1

        return timed


def watch_gc(totals: Totals) -> Any:
    """Adds wall time spent in the cyclic garbage collector to `totals['gc']` (it runs inside whatever
    code allocated, so without this it would be charged to random hooks)."""
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            totals["gc"] += time.perf_counter() - started[0]
            totals["gc_runs"] += 1

    gc.callbacks.append(callback)
    return callback


def instrument(app: web.Application, totals: Totals, *, warm_check: bool = False) -> list[str]:
    gateway = app[GATEWAY]
    labels = []
    for stage in gateway.stages:
        for hook in ("on_request", "on_routed", "on_finish"):
            if getattr(type(stage), hook) is not getattr(type(stage).__mro__[-2], hook, None):
                label = f"{stage.name}.{hook}"
                wrap_async(stage, hook, label, totals)
                labels.append(label)
    for attr, label in (("analyzer", "analysis"), ("router", "routing")):
        target = getattr(gateway, attr, None)
        method = "analyze" if attr == "analyzer" else "decide"
        if target is not None and hasattr(target, method):
            setattr(gateway, attr, TimedProxy(target, method, label, totals, warm_check=warm_check))
            labels.append(label)
            if warm_check:
                labels.append(label + WARM)
    for method in ("complete", "open_stream"):
        wrap_async(gateway, method, f"gateway.{method} (CPU, excl. wait)", totals)
        labels.append(f"gateway.{method} (CPU, excl. wait)")
    # The semantic cache's HNSW inserts run in an executor thread (fastroute.cache.indexer): still this
    # process's CPU, but off the event loop, so not inside cache.on_finish.
    try:
        from fastroute.cache.vectors import IndexBatch
    except ImportError:  # a build without deferred indexing
        return labels
    run = IndexBatch.run

    def timed_run(batch: Any) -> None:
        t0 = time.thread_time()
        try:
            run(batch)
        finally:
            totals[INDEXER] += time.thread_time() - t0

    IndexBatch.run = timed_run  # type: ignore[method-assign]
    labels.append(INDEXER)
    return labels


WARM = " (same call repeated at once)"
INDEXER = "cache indexer (HNSW inserts, executor thread)"


async def measure(args: argparse.Namespace, tmp: Path) -> None:
    upstream = start_upstream("1" if (os.cpu_count() or 1) >= 2 else None, 0.0, tmp / "upstream.log")
    try:
        env = {**os.environ, **parse_env(args.env)}
        env["FASTROUTE_CONFIG"] = str(bench_config(upstream.port, tmp / "bench.yaml"))
        env.setdefault("FASTROUTE_DATA_DIR", str(tmp / "data"))
        env.setdefault("FASTROUTE_LOG_LEVEL", "warning")
        if not args.no_policy:
            env.setdefault("FASTROUTE_POLICY", str(bench_policy(tmp / "policy.yaml")))
        settings = Settings.from_env(env)
        app = create_app(settings, secrets={})
        totals: Totals = defaultdict(float)
        labels = instrument(app, totals, warm_check=args.warm_check)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        if not args.default_gc:
            settle_heap()  # as `fastroute serve` does once it is up
        try:
            workload = Workload(stream=args.stream, temperature=args.temperature)
            await run_load("127.0.0.1", port, workload, connections=1, duration_s=1.0, warmup_s=0.0)
            totals.clear()
            gc_time = watch_gc(totals)
            t0, c0 = time.perf_counter(), time.process_time()
            res = await run_load(
                "127.0.0.1", port, workload, connections=1, duration_s=args.duration, warmup_s=0.0,
                first_nonce=50_000_000,
            )  # fmt: skip
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            gc.callbacks.remove(gc_time)
        finally:
            await runner.cleanup()
        n = max(1, res.requests)
        lat = sorted(res.latencies)
        print(f"{res.requests} requests, 1 connection, stream={args.stream}; failures: {res.failures or 'none'}")
        print(f"client-side latency p50 {lat[len(lat) // 2] * 1e6:.0f} us; process CPU (gateway + driver) "
              f"{cpu / n * 1e6:.0f} us/request over {wall:.1f}s")  # fmt: skip
        print(f"{'step':<58} {'us/request':>10}")
        for label in sorted(labels, key=lambda k: -totals[k]):
            print(f"{label:<58} {totals[label] / n * 1e6:>10.1f}")
        print(f"{'garbage collection (all generations)':<58} {totals['gc'] / n * 1e6:>10.1f}"
              f"   ({int(totals['gc_runs'])} collections)")  # fmt: skip
        stages = sum(
            v for k, v in totals.items() if "." in k and not k.startswith("gateway.") and k != INDEXER and WARM not in k
        )
        print(f"{'all stage hooks':<58} {stages / n * 1e6:>10.1f}")
    finally:
        upstream.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--temperature", type=float, default=0.2, help="0 exercises the semantic cache level")
    parser.add_argument("--no-policy", action="store_true", help="without the all-features policy file")
    parser.add_argument("--default-gc", action="store_true", help="skip the server's gc.freeze + thresholds")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for fastroute (repeatable)")
    parser.add_argument(
        "--warm-check", action="store_true",
        help="repeat the analysis and routing call at once and report both: as served (caches cold) vs warm",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory(prefix="fastroute-stages-") as tmp:
        uvloop.run(measure(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
