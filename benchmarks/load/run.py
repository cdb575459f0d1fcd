"""The load benchmark: fake upstream direct vs fastroute (vs nginx) in one run, reported as ratios.

    python benchmarks/load/run.py                      # 1 and 64 connections, plain and streaming
    python benchmarks/load/run.py --connections 1,4,16,64,128 --plot benchmarks/results/latency.png

fastroute is pinned to core 0 (`taskset -c 0`); this driver and the fake upstream share core 1. Targets
are measured in alternation (A B A B ...) so machine noise lands on both sides of every ratio.
Writes a JSON with every figure and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from driver import LoadResult, Workload, percentile, run_load
from targets import (
    Target,
    bench_config,
    bench_policy,
    start_bare_proxy,
    start_fastroute,
    start_nginx,
    start_upstream,
)


def summarise(results: list[LoadResult], cpu_s: float | None) -> dict[str, Any]:
    """Pools rounds: latencies together, RPS as total requests over total window."""
    lat = sorted(x for r in results for x in r.latencies)
    ttft = sorted(x for r in results for x in r.ttfts)
    requests = sum(r.requests for r in results)
    window = sum(r.window_s for r in results)
    failures: dict[str, int] = {}
    for r in results:
        for k, v in r.failures.items():
            failures[k] = failures.get(k, 0) + v
    out: dict[str, Any] = {
        "requests": requests,
        "ok": sum(r.ok for r in results),
        "failures": failures,
        "rps": requests / window if window else 0.0,
        "rps_rounds": [r.requests / r.window_s for r in results],
        "p50_ms": percentile(lat, 50) * 1e3,
        "p90_ms": percentile(lat, 90) * 1e3,
        "p99_ms": percentile(lat, 99) * 1e3,
        "p50_ms_rounds": [percentile(sorted(r.latencies), 50) * 1e3 for r in results],
    }
    if ttft:
        out.update(ttft_p50_ms=percentile(ttft, 50) * 1e3, ttft_p99_ms=percentile(ttft, 99) * 1e3)
    if cpu_s is not None and requests:
        out["cpu_us_per_request"] = cpu_s / requests * 1e6
    return out


async def measure(
    targets: list[Target],
    stream: bool,
    connections: int,
    rounds: int,
    duration_s: float,
    warmup_s: float,
    nonce: list[int],
    inside_view: bool = False,
    temperature: float = 0.2,
) -> dict[str, dict[str, Any]]:
    """Alternates targets round by round; each target gets `rounds` windows of `duration_s`."""
    per: dict[str, list[LoadResult]] = {t.name: [] for t in targets}
    inside: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets if t.fastroute}
    cpu: dict[str, float] = {t.name: 0.0 for t in targets}
    workload = Workload(stream=stream, temperature=temperature)
    for _ in range(rounds):
        for t in targets:
            c0 = t.cpu_s()
            res = await run_load(
                "127.0.0.1",
                t.port,
                workload,
                connections=connections,
                duration_s=duration_s,
                warmup_s=warmup_s,
                first_nonce=nonce[0],
            )
            # CPU is counted over warm-up too: scale it to the measured window's share of requests.
            cpu[t.name] += (t.cpu_s() - c0) * duration_s / (duration_s + warmup_s)
            nonce[0] += 10_000_000
            per[t.name].append(res)
            if inside_view and t.fastroute:
                inside[t.name].append(await own_latency(t.port))
    out = {name: summarise(rs, cpu[name] if name != "direct" else None) for name, rs in per.items()}
    for name, rounds_seen in inside.items():
        if rounds_seen:
            out[name]["inside_rounds"] = rounds_seen
    return out


async def own_latency(port: int) -> dict[str, float]:
    """fastroute's own latency window (`/admin/stats`: its last 4,096 requests, so about the round just
    run at one connection): the time spent in fastroute itself vs the whole request as it saw it."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/admin/stats?period=15m") as resp:
            latency = (await resp.json())["latency"]
    keys = ("window", "overhead_p50_ms", "overhead_p99_ms", "p50_ms", "p99_ms")
    return {k: float(latency[k]) for k in keys}


def add_ratios(row: dict[str, dict[str, Any]]) -> None:
    direct = row["direct"]
    for name, s in row.items():
        if name == "direct":
            continue
        for q in ("p50", "p90", "p99"):
            s[f"added_{q}_ms"] = s[f"{q}_ms"] - direct[f"{q}_ms"]
        s["rps_ratio"] = s["rps"] / direct["rps"] if direct["rps"] else 0.0
        if "ttft_p50_ms" in s and "ttft_p50_ms" in direct:
            s["added_ttft_p50_ms"] = s["ttft_p50_ms"] - direct["ttft_p50_ms"]
        # Round-by-round ratios show the noise: each pair of windows ran back to back.
        s["rps_ratio_rounds"] = [a / b for a, b in zip(s["rps_rounds"], direct["rps_rounds"], strict=True)]
        s["added_p50_ms_rounds"] = [a - b for a, b in zip(s["p50_ms_rounds"], direct["p50_ms_rounds"], strict=True)]


def machine() -> dict[str, str]:
    def sh(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "n/a"

    lscpu = sh(["lscpu"])
    model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": model,
        "cpus": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "rustc": sh(["rustc", "--version"]),
        "lscpu": lscpu,
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        "| mode | conns | target | RPS | RPS ratio | p50 ms | p90 ms | p99 ms | added p50 | added p99 "
        "| TTFT p50 | added TTFT p50 | CPU us/req | ok / sent |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        for name, s in row["targets"].items():
            ratio = f"{s['rps_ratio']:.2f}" if "rps_ratio" in s else "1"
            added50 = f"{s['added_p50_ms']:+.3f}" if "added_p50_ms" in s else ""
            added99 = f"{s['added_p99_ms']:+.3f}" if "added_p99_ms" in s else ""
            ttft = f"{s['ttft_p50_ms']:.3f}" if "ttft_p50_ms" in s else ""
            attft = f"{s['added_ttft_p50_ms']:+.3f}" if "added_ttft_p50_ms" in s else ""
            cpu = f"{s['cpu_us_per_request']:.0f}" if "cpu_us_per_request" in s else ""
            lines.append(
                f"| {row['mode']} | {row['connections']} | {name} | {s['rps']:.0f} | {ratio} | {s['p50_ms']:.3f} "
                f"| {s['p90_ms']:.3f} | {s['p99_ms']:.3f} | {added50} | {added99} | {ttft} | {attft} | {cpu} "
                f"| {s['ok']} / {s['requests']} |"
            )
    lines.append("")
    lines += inside_lines(report)
    lines += wrk_lines(report)
    lines += scaling_lines(report)
    lines.append("Peak RSS (VmHWM): " + ", ".join(f"{k} {v:.0f} MB" for k, v in report["peak_rss_mb"].items()))
    return "\n".join(lines)


def inside_lines(report: dict[str, Any]) -> list[str]:
    """fastroute's own figures per round: where a tail comes from. Overhead is the request's wall time in
    fastroute minus its wait for the upstream; the rest of the added latency is outside fastroute's code
    (kernel, scheduling of its process and the upstream's)."""
    out = []
    for row in report["rows"]:
        for name, s in row["targets"].items():
            rounds = s.get("inside_rounds")
            if not rounds:
                continue
            med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
            out.append(
                f"- {row['mode']} x{row['connections']} {name}, as fastroute saw it (median of {len(rounds)} rounds, "
                f"last {med['window']:.0f} requests each): its own time p50 {med['overhead_p50_ms']:.3f} / p99 "
                f"{med['overhead_p99_ms']:.3f} ms; whole request p50 {med['p50_ms']:.1f} / p99 {med['p99_ms']:.1f} ms"
            )
    return ["Inside fastroute (`/admin/stats` after each round):", "", *out, ""] if out else []


def wrk_lines(report: dict[str, Any]) -> list[str]:
    """The wrk cross-check (plain only): medians over rounds of RPS and latency percentiles."""
    rows = report.get("wrk") or []
    if not rows:
        return []
    out = [
        "wrk cross-check (plain; wrk on the driver core; median of rounds; checks status + answer shape):",
        "",
        "| conns | target | RPS | RPS ratio | p50 ms | p90 ms | p99 ms | bad / sent |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        med = {}
        for name, runs in row["targets"].items():
            ok = [r for r in runs if "rps" in r]
            if not ok:
                continue
            med[name] = {k: sorted(r[k] for r in ok)[len(ok) // 2] for k in ("rps", "p50_ms", "p90_ms", "p99_ms")}
            med[name]["bad"] = sum(r["bad"] for r in ok)
            med[name]["requests"] = sum(r["requests"] for r in ok)
        direct = med.get("direct", {}).get("rps") or float("nan")
        for name, m in med.items():
            out.append(
                f"| {row['connections']} | {name} | {m['rps']:.0f} | {m['rps'] / direct:.2f} | {m['p50_ms']:.3f} "
                f"| {m['p90_ms']:.3f} | {m['p99_ms']:.3f} | {m['bad']} / {m['requests']} |"
            )
    return [*out, ""]


def scaling_lines(report: dict[str, Any]) -> list[str]:
    """N workers vs 1: the raw throughput ratio, and the ratio projected from CPU per request.

    On a machine whose cores are also busy with the driver, the upstream and other work, N workers
    cannot get N cores, so the raw ratio understates scaling. CPU per request does not depend on how
    much CPU a process got: N x (CPU/request of 1 worker) / (CPU/request of N workers) is the ratio
    N dedicated cores would give, if the per-request cost is all that changes.
    """
    out = []
    for row in report["rows"]:
        one = row["targets"].get("1-worker")
        if one is None:
            continue
        for name, s in row["targets"].items():
            if not name.endswith("-worker") or name == "1-worker":
                continue
            n = int(name.split("-")[0])
            raw = s["rps"] / one["rps"] if one["rps"] else float("nan")
            # Rounds alternate between the targets, so round i of each ran under about the same machine load.
            rounds = sorted(a / b for a, b in zip(s["rps_rounds"], one["rps_rounds"], strict=True) if b)
            median = statistics.median(rounds) if rounds else float("nan")
            projected = n * one["cpu_us_per_request"] / s["cpu_us_per_request"]
            out.append(
                f"Scaling ({row['mode']}, {row['connections']} connections): {n} workers / 1 worker = {raw:.2f}x "
                f"measured RPS (per round {' / '.join(f'{r:.2f}' for r in rounds)}, median {median:.2f}x); "
                f"{projected:.2f}x projected for {n} dedicated cores from CPU per request "
                f"({one['cpu_us_per_request']:.0f} vs {s['cpu_us_per_request']:.0f} us)."
            )
    for row in report.get("wrk") or []:
        one_runs = [r.get("rps", 0.0) for r in row["targets"].get("1-worker", [])]
        for name, runs in row["targets"].items():
            if not name.endswith("-worker") or name == "1-worker" or not one_runs:
                continue
            # wrk needs a fraction of the Python driver's CPU, so the N workers keep more of the cores.
            rounds = sorted(r.get("rps", 0.0) / b for r, b in zip(runs, one_runs, strict=True) if b)
            median = statistics.median(rounds) if rounds else float("nan")
            out.append(
                f"Scaling (wrk, plain, {row['connections']} connections): {name.split('-')[0]} workers / 1 worker "
                f"per round {' / '.join(f'{r:.2f}' for r in rounds)}, median {median:.2f}x."
            )
    return [*out, ""] if out else []


def stage_names(env: dict[str, str]) -> list[str]:
    """The pipeline stages `fastroute serve` builds from this environment (what "all features" meant)."""
    from fastroute.server.app import load_catalogue
    from fastroute.server.composition import build_stages
    from fastroute.settings import Settings

    settings = Settings.from_env(env)
    return [s.name for s in build_stages(settings, load_catalogue(settings))]


def results_markdown(report: dict[str, Any], png: str | None) -> str:
    m, st = report["machine"], report["settings"]
    lines = [
        f"# Load benchmark, {m['date_utc']}",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} vCPU; kernel {m['kernel']}; Python {m['python']}; {m['rustc']}.",
        f"Load average at start {m['loadavg_start']}, at end {report['loadavg_end']} (other work on the machine).",
        f"Pinning: {st['pinning']}. Rounds {st['rounds']} x {st['duration_s']} s per target (+{st['warmup_s']} s "
        "warm-up each), targets alternated round by round; latencies pooled over rounds.",
        f"fastroute stages on: {', '.join(st.get('stages') or ['none'])}; policy file: "
        f"{'yes (PII redact, rate limits, cost ceiling, budgets)' if st.get('policy') else 'no'}.",
        f"Extra environment: {st['env'] or 'none'}. Note: {st['note'] or '-'}",
        "",
        table(report),
        "",
        "Per-round ratios (noise): "
        + "; ".join(
            f"{r['mode']} x{r['connections']} {n}: RPS ratio "
            + "/".join(f"{x:.2f}" for x in s.get("rps_ratio_rounds", []))
            + ", added p50 ms "
            + "/".join(f"{x:+.3f}" for x in s.get("added_p50_ms_rounds", []))
            for r in report["rows"]
            for n, s in r["targets"].items()
            if n != "direct"
        ),
        "",
    ]
    if png:
        lines += [f"![latency vs load]({png})", ""]
    lines += ["<details><summary>lscpu</summary>", "", "```", m["lscpu"], "```", "</details>", ""]
    return "\n".join(lines)


def parse_env(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = value
    return out


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    cpus = os.cpu_count() or 1
    loadavg_start = " ".join(Path("/proc/loadavg").read_text().split()[:3])  # noqa: ASYNC240 (procfs, instant)
    gw_cpu, drv_cpu = ("0", "1") if cpus >= 2 and not args.unpinned else (None, None)
    if drv_cpu is not None:
        os.sched_setaffinity(0, {int(drv_cpu)})
    started: list[Target] = []
    try:
        upstream = start_upstream(drv_cpu, args.chunk_delay_ms, tmp / "upstream.log")
        started.append(upstream)
        env = {**os.environ, **parse_env(args.env)}
        env["FASTROUTE_CONFIG"] = str(bench_config(upstream.port, tmp / "bench.yaml"))
        env.setdefault("FASTROUTE_DATA_DIR", str(tmp / "data"))
        if not args.no_policy:
            env.setdefault("FASTROUTE_POLICY", str(bench_policy(tmp / "policy.yaml")))
        targets = [upstream]
        try:
            stages = stage_names(env)
        except Exception as e:  # the figure is informative; never fail the run over it
            stages = [f"unknown ({e})"]
        if "fastroute" in args.targets.split(","):
            gateway = start_fastroute(
                gw_cpu if args.workers == 1 else None,
                {**env, "FASTROUTE_WORKERS": str(args.workers)},
                tmp / "fastroute.log",
            )
            started.append(gateway)
            targets.append(gateway)
        if "fastroute-nopolicy" in args.targets.split(","):
            bare = {k: v for k, v in env.items() if k != "FASTROUTE_POLICY"}
            other = start_fastroute(gw_cpu, bare, tmp / "nopolicy.log", name="fastroute-nopolicy")
            started.append(other)
            targets.append(other)
        for count in (int(c) for c in args.workers_compare.split(",") if c):
            w_env = {**env, "FASTROUTE_WORKERS": str(count)}
            one_core = args.one_worker_core or gw_cpu
            other = start_fastroute(
                one_core if count == 1 else None, w_env, tmp / f"w{count}.log", name=f"{count}-worker"
            )
            started.append(other)
            targets.append(other)
        for variant in args.variant:
            label, _, path = variant.partition("=")
            v_env = {**env, "FASTROUTE_WORKERS": str(args.workers), "PYTHONPATH": path}
            other = start_fastroute(gw_cpu if args.workers == 1 else None, v_env, tmp / f"{label}.log", name=label)
            started.append(other)
            targets.append(other)
        if "aiohttp-proxy" in args.targets.split(","):
            bare = start_bare_proxy(gw_cpu, upstream.port, tmp)
            started.append(bare)
            targets.append(bare)
        if "nginx" in args.targets.split(","):
            nginx = start_nginx(gw_cpu, upstream.port, tmp)
            if nginx is None:
                print("nginx not installed: skipping the nginx peer", file=sys.stderr)
            else:
                started.append(nginx)
                targets.append(nginx)
        rows = []
        nonce = [1]
        for mode in args.modes.split(","):
            for conns in (int(c) for c in args.connections.split(",")):
                print(f"-- {mode} x{conns}: {', '.join(t.name for t in targets)}", file=sys.stderr, flush=True)
                row = await measure(
                    targets, mode == "stream", conns, args.rounds, args.duration, args.warmup, nonce, args.inside,
                    temperature=args.temperature,
                )
                add_ratios(row)
                rows.append({"mode": mode, "connections": conns, "targets": row})
        wrk_rows = []
        if args.wrk:
            import wrk

            if not wrk.available():
                print("wrk not installed: skipping the wrk cross-check", file=sys.stderr)
            else:
                wrk_runs = 0  # each run gets its own nonce range
                for conns in (int(c) for c in args.connections.split(",")):
                    print(f"-- wrk plain x{conns}", file=sys.stderr, flush=True)
                    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
                    for _ in range(args.rounds):
                        for t in targets:
                            first = 1_000_000_000 + 10_000_000 * wrk_runs
                            wrk_runs += 1
                            runs[t.name].append(wrk.run_wrk(t.port, conns, args.duration, drv_cpu, first))
                    wrk_rows.append({"connections": conns, "targets": runs})
        rss = {t.name: t.peak_rss_mb() for t in targets}
        loadavg_end = " ".join(Path("/proc/loadavg").read_text().split()[:3])  # noqa: ASYNC240 (procfs, instant)
        return {
            "machine": {**machine(), "loadavg_start": loadavg_start},
            "settings": {
                "rounds": args.rounds,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "workers": args.workers,
                "chunk_delay_ms": args.chunk_delay_ms,
                "temperature": args.temperature,
                "workers_compare": args.workers_compare,
                "env": parse_env(args.env),
                "stages": stages,
                "policy": "FASTROUTE_POLICY" in env,
                "pinning": f"gateway/nginx cpu {gw_cpu}, driver+upstream cpu {drv_cpu}"
                + (f", 1-worker cpu {args.one_worker_core}" if args.one_worker_core else ""),
                "note": args.note,
            },
            "rows": rows,
            "wrk": wrk_rows,
            "peak_rss_mb": rss,
            "loadavg_end": loadavg_end,
        }
    finally:
        for t in reversed(started):
            t.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="fastroute load benchmark (gateway vs direct, one run).")
    parser.add_argument("--connections", default="1,64")
    parser.add_argument("--modes", default="plain,stream")
    parser.add_argument(
        "--targets",
        default="fastroute,aiohttp-proxy,nginx",
        help="besides direct: fastroute, fastroute-nopolicy, aiohttp-proxy (the stack with no features), nginx",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating windows per target")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds measured per window")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds discarded before each window")
    parser.add_argument("--workers", type=int, default=1, help="FASTROUTE_WORKERS (>1: not pinned)")
    parser.add_argument(
        "--workers-compare", default="", metavar="1,2",
        help="also run fastroute with each FASTROUTE_WORKERS count given (the multi-core scaling check)",
    )  # fmt: skip
    parser.add_argument(
        "--unpinned", action="store_true", help="no taskset: every process may use every core (for --workers-compare)"
    )
    parser.add_argument(
        "--one-worker-core", default=None, metavar="CPU",
        help="with --unpinned --workers-compare: pin the 1-worker target to this core (one worker on one core "
        "vs N workers on every core; the driver and upstream float in both cases)",
    )  # fmt: skip
    parser.add_argument(
        "--inside", action="store_true",
        help="after each round read fastroute's own latency window (/admin/stats): its own time vs the whole "
        "request; each report's ledger queries raise the peak RSS by ~5-12 MB, so the RSS line is then not comparable",
    )  # fmt: skip
    parser.add_argument("--wrk", action="store_true", help="also measure plain mode with wrk (if installed)")
    parser.add_argument("--no-policy", action="store_true", help="run without the all-features policy file")
    parser.add_argument("--results", type=Path, help="directory: write load-<date>.json/.md (+ .png with --plot)")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    parser.add_argument(
        "--temperature", type=float, default=0.2,
        help="the requests' temperature: 0.2 (default) skips the cache's semantic level, 0 exercises it",
    )  # fmt: skip
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for fastroute (repeatable)")
    parser.add_argument(
        "--variant", action="append", default=[],
        help="LABEL=DIR: also run fastroute imported from DIR (a copy of python/), for A/B comparisons",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--plot", type=Path, help="PNG of latency vs load (needs matplotlib)")
    parser.add_argument("--note", default="", help="free text stored with the results")
    args = parser.parse_args(argv)
    args.variant = [f"{label}={Path(path).resolve()}" for label, _, path in (v.partition("=") for v in args.variant)]
    with tempfile.TemporaryDirectory(prefix="fastroute-bench-") as tmp:
        report = uvloop.run(run(args, Path(tmp)))
    print(json.dumps(report["settings"], indent=1))
    print(table(report))
    print(f"load average: start {report['machine']['loadavg_start']}, end {report['loadavg_end']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table(report) + "\n")
    if args.results:
        stem = "load-" + time.strftime("%Y%m%d-%H%M", time.gmtime())
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / f"{stem}.json").write_text(json.dumps(report, indent=1))
        if args.plot is None:
            args.plot = args.results / f"{stem}.png"
        png = args.plot.name if args.plot.parent.resolve() == args.results.resolve() else str(args.plot)
        (args.results / f"{stem}.md").write_text(results_markdown(report, png))
    if args.plot:
        from plot import plot_latency

        plot_latency(report, args.plot)
    bad = sum(sum(s["failures"].values()) for row in report["rows"] for s in row["targets"].values())
    if bad:
        print(f"{bad} responses were wrong or failed", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
