"""Who uses the cores while wrk loads fastroute: the gateway (all its processes and threads), the fake upstream,
the kernel, and what stays idle. Nothing is pinned, as in the scaling runs' two-worker target.

    python benchmarks/load/core_share.py --workers 2 [--duration 8] [--connections 64]

The scaling goal (two workers serve 1.7x one) assumes the two workers have the machine's two cores. On a
two-core machine they share them with wrk, the upstream and the kernel's network work, and this says how much
those take (session 23: ~15 % of the two cores at ~4,400 RPS).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from targets import bench_config, bench_policy, start_fastroute, start_upstream
from wrk import available, run_wrk

_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_ticks() -> list[int]:
    """The first eight fields of /proc/stat's `cpu` line (all cores), in clock ticks."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args()
    if not available():
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="fastroute-cores-") as name:
        tmp = Path(name)
        upstream = start_upstream(None, 0.0, tmp / "upstream.log")
        env = {
            **os.environ,
            "FASTROUTE_CONFIG": str(bench_config(upstream.port, tmp / "bench.yaml")),
            "FASTROUTE_POLICY": str(bench_policy(tmp / "policy.yaml")),
            "FASTROUTE_DATA_DIR": str(tmp / "data"),
            "FASTROUTE_WORKERS": str(args.workers),
        }
        gateway = start_fastroute(None, env, tmp / "fastroute.log")
        try:
            run_wrk(gateway.port, args.connections, 2.0, None, 1_000_000)  # warm-up
            m0, g0, u0 = machine_ticks(), gateway.cpu_s(), upstream.cpu_s()
            result = run_wrk(gateway.port, args.connections, args.duration, None, 5_000_000)
            m1, g1, u1 = machine_ticks(), gateway.cpu_s(), upstream.cpu_s()
        finally:
            gateway.stop()
            upstream.stop()
    spent = [b - a for a, b in zip(m0, m1, strict=True)]
    total = sum(spent) or 1
    total_s = total / os.sysconf("SC_CLK_TCK")  # CPU seconds of all cores, idle included
    cores = os.cpu_count() or 1
    share = {k: 100 * v / total for k, v in zip(_FIELDS, spent, strict=True)}
    gw, up = 100 * (g1 - g0) / total_s, 100 * (u1 - u0) / total_s
    rps = float(result.get("rps") or 0.0)
    print(f"{args.workers} worker(s), {args.connections} connections, wrk: {rps:,.0f} RPS")
    print("all cores: " + ", ".join(f"{k} {v:.1f} %" for k, v in share.items() if v >= 0.05))
    print(
        f"fastroute {gw:.1f} % of {cores} cores ({gw * cores / 100:.2f} cores, "
        f"{(g1 - g0) / max(rps * args.duration, 1) * 1e6:.0f} us per request); "
        f"fake upstream {up:.1f} %; the rest (wrk, the kernel's softirq, other) "
        f"{100 - share['idle'] - gw - up:.1f} %; idle {share['idle']:.1f} %"
    )


if __name__ == "__main__":
    main()
