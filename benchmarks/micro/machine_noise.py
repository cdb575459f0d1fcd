"""How often this core is taken away, and for how long: the floor under any p99 a micro benchmark reports.

A loop that only reads the clock sees every spell the core spent elsewhere (interrupts, exits to the
hypervisor, other processes) as a gap between two reads. A call of length L meets a gap of at least G with
probability ~ rate(G) x L; once that is over 1 %, the call's p99 includes such a gap, however fast the code.
Machines differ a lot: the AMD EPYC VMs of sessions 1-21 lost their core ~1,400 times a second for a median
~26 us; session 22's Intel Xeon VM ~20,000 times a second, almost all for 2-3 us, but ~430 times for more
than 20 us.

The clock loop touches almost no memory. Calls that read memory scattered over tens of megabytes (an HNSW
search, an embedding table) are stalled far more often on a VM, by a cause the loop does not see:
`memory_stalls` measures that with calls of the same kind of work over a small and a large buffer, side by
side (session 23: 0.2-0.6 % of 400-read calls over 1-128 MB took over 100 us, when the clock loop predicted
~0.02 %).
"""

from __future__ import annotations

import time

import numpy as np

THRESHOLDS_US = (5, 20, 50, 100)


def core_gaps(seconds: float = 1.0, floor_us: float = 2.0) -> list[float]:
    """The gaps longer than `floor_us` (in us) seen by a loop reading the clock for `seconds`."""
    clock, floor = time.perf_counter_ns, int(floor_us * 1_000)
    start = prev = clock()
    end = start + int(seconds * 1e9)
    gaps: list[float] = []
    while prev < end:
        now = clock()
        if now - prev > floor:
            gaps.append((now - prev) / 1_000.0)
        prev = now
    return gaps


def gap_rates(gaps: list[float], seconds: float) -> dict[int, float]:
    """Gaps per second longer than each of `THRESHOLDS_US`."""
    a = np.array(gaps)
    return {t: float((a > t).sum()) / seconds for t in THRESHOLDS_US}


def describe(gaps: list[float], seconds: float, call_us: float) -> str:
    """One line: gaps per second by length, and the share of `call_us`-long calls that meet each kind."""
    rates = gap_rates(gaps, seconds)
    median = float(np.median(gaps)) if gaps else 0.0
    parts = ", ".join(f"> {t} us {r:,.0f}/s ({100 * r * call_us / 1e6:.2f} %)" for t, r in rates.items())
    return (
        f"this core was taken away {len(gaps) / seconds:,.0f} times/s (median {median:.1f} us) by interrupts, the "
        f"hypervisor or other processes; by length, and the share of {call_us:.0f} us calls meeting one: {parts}"
    )


def memory_stalls(footprint_mb: float, reads: int = 400, calls: int = 10_000, seed: int = 1) -> dict[str, float]:
    """Times `calls` calls that each read `reads` random int64 scattered over a `footprint_mb` buffer (the
    access pattern of a graph search or an embedding-table sum). Returns the calls' mean and p99 in us and the
    share (%) over 50 and over 100 us."""
    rng = np.random.default_rng(seed)
    data = np.ones(max(1, int(footprint_mb * 2**20) // 8), dtype=np.int64)
    picks = [rng.integers(0, len(data), reads) for _ in range(min(calls, 2_000))]
    clock = time.perf_counter_ns
    times = np.empty(calls)
    for i in range(calls):
        idx = picks[i % len(picks)]
        t = clock()
        data[idx].sum()
        times[i] = (clock() - t) / 1_000.0
    return {
        "mean_us": float(times.mean()),
        "p99_us": float(np.percentile(times, 99)),
        "over_50_pct": float((times > 50).mean() * 100),
        "over_100_pct": float((times > 100).mean() * 100),
    }


def describe_memory_stalls(footprints_mb: tuple[float, ...] = (1, 128), calls: int = 10_000) -> str:
    """One line: `memory_stalls` for each footprint, measured one after the other."""
    parts = []
    for mb in footprints_mb:
        r = memory_stalls(mb, calls=calls)
        parts.append(
            f"{mb:g} MB: mean {r['mean_us']:.1f} us, p99 {r['p99_us']:.1f} us, > 50 us {r['over_50_pct']:.2f} %, "
            f"> 100 us {r['over_100_pct']:.2f} %"
        )
    return "calls reading 400 scattered int64 (the clock loop's control for memory-bound work): " + "; ".join(parts)
