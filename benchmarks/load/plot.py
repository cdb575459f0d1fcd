"""Latency vs load PNG from a run.py JSON report: one line per target, one point per connection count.

python benchmarks/load/plot.py benchmarks/results/load.json benchmarks/results/latency_vs_load.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLOURS = {"direct": "#4c72b0", "fastroute": "#dd8452", "fastroute-nopolicy": "#8172b3", "nginx": "#55a868"}


def plot_latency(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = sorted({row["mode"] for row in report["rows"]}, key=lambda m: m != "plain")
    fig, axes = plt.subplots(1, len(modes), figsize=(6.5 * len(modes), 4.6), squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        rows = sorted((r for r in report["rows"] if r["mode"] == mode), key=lambda r: r["connections"])
        names = list(dict.fromkeys(n for r in rows for n in r["targets"]))
        for name in names:
            points = [(r["targets"][name], r["connections"]) for r in rows if name in r["targets"]]
            rps = [s["rps"] for s, _ in points]
            colour = COLOURS.get(name)
            ax.plot(rps, [s["p50_ms"] for s, _ in points], "o-", color=colour, label=f"{name} p50")
            ax.plot(rps, [s["p99_ms"] for s, _ in points], "s--", color=colour, alpha=0.6, label=f"{name} p99")
            for s, conns in points:
                ax.annotate(str(conns), (s["rps"], s["p50_ms"]), textcoords="offset points", xytext=(4, -10),
                            fontsize=7, color=colour)  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("throughput (requests/s, log)  - labels: concurrent connections")
        ax.set_ylabel("latency (ms, log)" if mode == "plain" else "full-stream latency (ms, log)")
        ax.set_title(f"{mode}: latency vs load")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    m = report.get("machine", {})
    fig.suptitle(
        f"fastroute vs direct, fake upstream at 0 ms; gateway pinned to 1 core. {m.get('cpu', '')}, "
        f"{m.get('cpus', '?')} vCPU, {m.get('date_utc', '')}",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    plot_latency(json.loads(Path(argv[0]).read_text()), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
