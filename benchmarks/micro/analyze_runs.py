"""Medians over several runs of benchmarks/micro/test_analyze_bench.py (a noisy machine needs several runs).

Usage: `python benchmarks/micro/analyze_runs.py run1.json run2.json ...` on files written by
`pytest benchmarks/micro/test_analyze_bench.py --benchmark-enable --benchmark-json=runN.json`. Prints, per
size and variant, the median over runs of each run's wall p50 / p99 / min and CPU-time p50 / p99, the
calls per run, the number of runs, and the p99s of the runs taken at the lowest load average.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

VARIANTS = ("native", "native+embedding", "pure-python")


def _runs(paths: list[str]) -> dict[int, list[dict[str, Any]]]:
    """Size (requested tokens) -> the `extra_info` of every run at that size."""
    by_size: dict[int, list[dict[str, Any]]] = {}
    for path in paths:
        for bench in json.loads(Path(path).read_text())["benchmarks"]:
            size = int(bench["params"]["tokens"])
            by_size.setdefault(size, []).append(bench["extra_info"])
    return by_size


def main(paths: list[str]) -> None:
    print(
        "| tokens (bytes) | variant | wall p50 / p99 / min (µs) | CPU p50 / p99 (µs) | calls x runs "
        "| wall p99 at the lowest load (load) |"
    )
    print("|---|---|---|---|---|---|")
    for _size, infos in sorted(_runs(paths).items()):
        for variant in VARIANTS:
            rows = [i for i in infos if variant in i]
            if not rows:
                continue

            def med(key: str, rows: list[dict[str, Any]] = rows, variant: str = variant) -> float:
                return float(statistics.median(r[variant][key] for r in rows))

            quiet = min(rows, key=lambda r: r.get("load_start", 0.0))
            print(
                f"| {rows[0]['tokens']} ({rows[0]['bytes']}) | {variant} "
                f"| {med('p50_us'):.1f} / {med('p99_us'):.1f} / {med('min_us'):.1f} "
                f"| {med('cpu_p50_us'):.1f} / {med('cpu_p99_us'):.1f} "
                f"| {int(med('rounds'))} x {len(rows)} "
                f"| {quiet[variant]['p99_us']:.1f} ({quiet.get('load_start', float('nan')):.1f}) |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
