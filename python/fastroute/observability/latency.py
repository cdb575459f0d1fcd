"""`LatencyWindow`: p50/p99 latency, gateway overhead, TTFT and routing time over the last N requests.

Pure: no I/O. Appending is O(1); percentiles are computed only when asked (for `/admin/stats`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple


class LatencySample(NamedTuple):
    app: str
    department: str
    latency_s: float
    overhead_s: float
    route_s: float
    ttft_s: float | None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (`q` in 0..100); 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _ms(value: float, digits: int = 3) -> float:
    return round(value * 1000.0, digits)


def _ms_coarse(value: float) -> float:
    """Whole-request figures: 0.1 ms below 100 ms, whole milliseconds above (what a reader needs)."""
    ms = value * 1000.0
    return round(ms, 1) if ms < 100.0 else float(round(ms))


class LatencyWindow:
    """The last `size` served requests' timings (a ring buffer)."""

    def __init__(self, size: int) -> None:
        self._samples: deque[LatencySample] = deque(maxlen=size)

    def add(self, sample: LatencySample) -> None:
        self._samples.append(sample)

    def __len__(self) -> int:
        return len(self._samples)

    def summary(self, app: str | None = None, department: str | None = None) -> dict[str, Any]:
        """p50/p99 in milliseconds over the window (overhead and routing to the µs)."""
        samples = [
            s for s in self._samples
            if (app is None or s.app == app) and (department is None or s.department == department)
        ]
        latency = sorted(s.latency_s for s in samples)
        overhead = sorted(s.overhead_s for s in samples)
        route = sorted(s.route_s for s in samples)
        ttft = sorted(s.ttft_s for s in samples if s.ttft_s is not None)
        return {
            "window": len(samples),
            "p50_ms": _ms_coarse(percentile(latency, 50)),
            "p99_ms": _ms_coarse(percentile(latency, 99)),
            "overhead_p50_ms": _ms(percentile(overhead, 50)),
            "overhead_p99_ms": _ms(percentile(overhead, 99)),
            "route_p50_ms": _ms(percentile(route, 50)),
            "route_p99_ms": _ms(percentile(route, 99)),
            "ttft_p50_ms": _ms_coarse(percentile(ttft, 50)),
            "ttft_p99_ms": _ms_coarse(percentile(ttft, 99)),
        }
