"""How often this core is taken away, and for how long: the floor under any p99 a micro benchmark reports.

A loop that only reads the clock sees every spell the core spent elsewhere (interrupts, exits to the
hypervisor, other processes) as a gap between two reads. A call of length L meets a gap of at least G with
probability ~ rate(G) x L; once that is over 1 %, the call's p99 includes such a gap, however fast the code.
Machines differ a lot: the AMD EPYC VMs of sessions 1-21 lost their core ~1,400 times a second for a median
~26 us; session 22's Intel Xeon VM ~20,000 times a second, almost all for 2-3 us, but ~430 times for more
than 20 us.
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
