"""Profiles fastroute under load: CPU per request, plus a py-spy sample of where that CPU goes.

    python benchmarks/load/profile_gateway.py --connections 16 --duration 8 [--stream] [--env FASTROUTE_X=...]

Same set-up as run.py (gateway on core 0, driver + fake upstream on core 1). CPU per request is read from
/proc (user + system time of the gateway over the window), which stays meaningful on a busy machine where
wall-clock throughput does not. Needs `py-spy` for the breakdown (`pip install py-spy`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import uvloop
from driver import Workload, run_load
from run import parse_env
from targets import bench_config, bench_policy, start_fastroute, start_upstream


def summarise_raw(path: Path, top: int) -> str:
    """Self and inclusive shares per frame from py-spy's raw (collapsed-stack) output."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return "no samples"
    out = [f"{total} samples", "-- self"]
    out += [f"{n / total * 100:5.1f}%  {f}" for f, n in own.most_common(top)]
    out.append("-- inclusive")
    out += [f"{n / total * 100:5.1f}%  {f}" for f, n in incl.most_common(top)]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--temperature", type=float, default=0.2, help="0 exercises the semantic cache level")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for fastroute (repeatable)")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-pyspy", action="store_true", help="only measure CPU per request")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw output here")
    parser.add_argument("--gil", action="store_true", help="sample only the thread holding the GIL (py-spy --gil)")
    parser.add_argument("--no-policy", action="store_true", help="without the all-features policy file")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="fastroute-profile-") as tmp_name:
        tmp = Path(tmp_name)
        upstream = start_upstream("1", 0.0, tmp / "upstream.log")
        gateway = None
        try:
            env = {**os.environ, **parse_env(args.env)}
            env["FASTROUTE_CONFIG"] = str(bench_config(upstream.port, tmp / "bench.yaml"))
            if not args.no_policy:  # the same all-features policy file as run.py and stage_costs.py
                env.setdefault("FASTROUTE_POLICY", str(bench_policy(tmp / "policy.yaml")))
            env.setdefault("FASTROUTE_DATA_DIR", str(tmp / "data"))
            gateway = start_fastroute("0", env, tmp / "fastroute.log")
            workload = Workload(stream=args.stream, temperature=args.temperature)
            # warm up (first requests pay for lazy imports and connection set-up)
            uvloop.run(run_load("127.0.0.1", gateway.port, workload, connections=args.connections, duration_s=1.0))
            spy = None
            raw = args.raw or tmp / "raw.txt"
            if not args.no_pyspy and shutil.which("py-spy"):
                spy = subprocess.Popen(
                    ["py-spy", "record", "-p", str(gateway.proc.pid if gateway.proc else 0), "-f", "raw",
                     "-o", str(raw), "-r", str(args.rate), "-d", str(int(args.duration)), "--subprocesses",
                     *(["--gil"] if args.gil else [])],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            c0 = gateway.cpu_s()
            res = uvloop.run(
                run_load(
                    "127.0.0.1", gateway.port, workload, connections=args.connections,
                    duration_s=args.duration, warmup_s=0.0, first_nonce=10_000_000,
                )
            )  # fmt: skip
            cpu = gateway.cpu_s() - c0
            if spy is not None:
                spy.wait()
            print(f"{res.requests} requests in {res.window_s:.1f}s = {res.requests / res.window_s:.0f} RPS "
                  f"(failures: {res.failures or 'none'})")  # fmt: skip
            print(f"gateway CPU: {cpu:.2f}s = {cpu / max(1, res.requests) * 1e6:.0f} us per request"
                  + (" (py-spy sampling adds a little)" if spy is not None else ""))  # fmt: skip
            if spy is not None and raw.exists():
                print(summarise_raw(raw, args.top))
        finally:
            if gateway is not None:
                gateway.stop()
            upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
