"""Instructions per request: the gateway's CPU cost counted by callgrind instead of timed (issue 8's A/B tool).

    python benchmarks/load/instructions.py [--requests 300] [--connections 1] [--stream] [--variant L=DIR ...]

The machines these benchmarks run on are shared: a timed A/B of two builds moves by 10-30 % from one minute to
the next (benchmarks/results/README.md). The number of instructions a request takes does not. This starts the
gateway under `valgrind --tool=callgrind` (about 50x slower, which is fine: only counts are read) with the load
benchmark's catalogue and all-features policy, in front of the fake upstream, sends warm-up requests, zeroes
the counters, sends `--requests` more (each with its own nonce, so each is a cache miss and a store), dumps
the counters and divides. Everything the process does is counted: the aiohttp server, the stages, the upstream
call, the background threads (SQLite writer, cache indexer) and garbage collection.

Instructions are not time (cache misses and branch mispredictions cost more than they count), so use this to
compare builds, and the timed benchmarks (`run.py`) for what a build achieves. Concurrency changes the count:
`--connections 64` lets requests share event-loop turns and run their stage hooks in batches.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop
from driver import ClientConnection, Workload, _wire, check_plain, check_stream
from targets import REPO, bench_config, bench_policy, start_fastroute, start_upstream


def _callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def _totals(out_dir: Path, pid: int) -> dict[int, int]:
    """Instructions per thread in the newest dump of process `pid`: the main thread (1, the event loop) and
    Python's threads (SQLite writers, the cache indexer). Threads of native libraries are left out: under
    valgrind an onnxruntime thread shows hundreds of thousands of instructions per request, while `perf`
    on the real process finds no onnxruntime samples at all (the router scores with its verified linear
    fast path), so counting it would charge requests for an artefact of the measurement."""
    totals: dict[int, int] = {}
    for dump in out_dir.glob(f"cg.{pid}.*-*"):  # cg.<pid>.<dump>-<thread>
        thread = int(dump.name.rsplit("-", 1)[1])
        text = dump.read_text(errors="replace")
        if thread != 1 and "thread_run" not in text:
            continue
        for line in text.splitlines():
            if line.startswith(("totals:", "summary:")):
                totals[thread] = int(line.split()[1])
                break
    if 1 not in totals:
        raise RuntimeError(f"no callgrind dump of {pid}'s main thread in {out_dir}")
    return totals


def _dump_totals(out_dir: Path, pid: int) -> dict[int, int]:
    """Has callgrind write the counts since the last zeroing, then reads them (`_totals`)."""
    _callgrind_control("--dump", str(pid))
    time.sleep(0.5)
    return _totals(out_dir, pid)


async def _send(port: int, workload: Workload, first: int, count: int, connections: int) -> None:
    loop = asyncio.get_running_loop()
    check = check_stream if workload.stream else check_plain
    numbers = iter(range(first, first + count))

    async def client() -> None:
        _, conn = await loop.create_connection(ClientConnection, "127.0.0.1", port)
        for n in numbers:
            resp = await conn.request(_wire("127.0.0.1", port, workload.body(n)))
            why = check(resp, n)
            if why is not None:
                raise RuntimeError(f"request {n} answered wrongly: {why}")
        assert conn.transport is not None
        conn.transport.close()

    await asyncio.gather(*(client() for _ in range(connections)))


def count(label: str, pythonpath: str, args: argparse.Namespace, tmp: Path, upstream_port: int) -> float:
    """Instructions per request of the build importable from `pythonpath`."""
    out_dir = tmp / label
    out_dir.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "FASTROUTE_CONFIG": str(bench_config(upstream_port, out_dir / "bench.yaml")),
        "FASTROUTE_POLICY": str(bench_policy(out_dir / "policy.yaml")),
        "FASTROUTE_DATA_DIR": str(out_dir / "data"),
    }
    valgrind = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out_dir}/cg.%p"]
    gateway = start_fastroute(None, env, out_dir / "gateway.log", label, wrapper=valgrind, ready_timeout_s=600.0)
    assert gateway.proc is not None
    pid, port = gateway.proc.pid, gateway.port
    try:
        workload = Workload(stream=args.stream, temperature=args.temperature)
        uvloop.run(_send(port, workload, 0, args.warmup, args.connections))
        time.sleep(1.0)  # let background writers settle before counting
        _callgrind_control("--zero", str(pid))
        t0 = time.monotonic()
        uvloop.run(_send(port, workload, args.warmup, args.requests, args.connections))
        time.sleep(1.0)  # the deferred bookkeeping of the last requests (ledger flush, indexer) is counted too
        busy_s = time.monotonic() - t0
        busy = _dump_totals(out_dir, pid)
        for dump in out_dir.glob(f"cg.{pid}.*-*"):
            dump.rename(dump.with_name("busy-" + dump.name))
        # The same wall time idle: what timers and background threads cost regardless of requests (under
        # valgrind a request takes ~50x longer, so time-driven work would otherwise be charged to requests).
        _callgrind_control("--zero", str(pid))
        time.sleep(busy_s)
        idle = _dump_totals(out_dir, pid)
        if args.keep:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            for dump in out_dir.glob("*cg.*"):
                shutil.copy(dump, Path(args.keep) / f"{label}.{dump.name}")
        threads = sorted(set(busy) | set(idle))
        print(f"  {label}: per request by thread (busy - idle): "
              + ", ".join(f"{t}: {(busy.get(t, 0) - idle.get(t, 0)) / args.requests:,.0f}" for t in threads
                          if busy.get(t, 0) or idle.get(t, 0)))
        return (sum(busy.values()) - sum(idle.values())) / args.requests
    finally:
        gateway.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--variant", action="append", default=[], help="LABEL=DIR: also count the build in DIR")
    parser.add_argument("--rounds", type=int, default=1, help="count each build this many times, alternating")
    parser.add_argument("--keep", help="copy the callgrind dumps here (for callgrind_annotate)")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind (Debian package `valgrind`) is needed", file=sys.stderr)
        return 2
    builds = [("fastroute", str(REPO / "python"))] + [tuple(v.split("=", 1)) for v in args.variant]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        upstream = start_upstream(None, 0.0, tmp / "upstream.log")
        try:
            for r in range(args.rounds):
                for label, path in builds:
                    per = count(f"{label}-{r}", path, args, tmp, upstream.port)
                    print(f"{label}: {per:,.0f} instructions per request (round {r + 1}, {args.requests} requests, "
                          f"{args.connections} connection(s){', streamed' if args.stream else ''})", flush=True)
        finally:
            upstream.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
