"""Per-deployment latency statistics (EWMA time-to-first-token and throughput, recent p95) and the
ordering of a tier's deployments for a latency class (realtime: fastest, batch: cheapest).

Pure: no I/O; times come in as arguments.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastroute.catalogue import ModelEntry

LATENCY_CLASSES: tuple[str, ...] = ("realtime", "standard", "batch")
LATENCY_HEADER = "x-fastroute-latency"
_RING = 64


@dataclass(slots=True)
class DeploymentLatency:
    """One deployment in one mode ("stream": first chunk; "complete": whole answer)."""

    first_s: float | None = None  # EWMA seconds until the first token (streams) or the answer (complete)
    tokens_per_s: float | None = None  # EWMA output throughput
    samples: int = 0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=_RING))

    def p95(self) -> float | None:
        if not self.recent:
            return None
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _ewma(old: float | None, new: float, alpha: float) -> float:
    return new if old is None else old + alpha * (new - old)


class LatencyBoard:
    """EWMA statistics per (deployment, mode), updated after every successful upstream call."""

    def __init__(self, alpha: float = 0.2) -> None:
        self._alpha = alpha
        self._stats: dict[tuple[str, str], DeploymentLatency] = {}

    def stats(self, name: str, mode: str) -> DeploymentLatency:
        key = (name, mode)
        st = self._stats.get(key)
        if st is None:
            st = self._stats[key] = DeploymentLatency()
        return st

    def record_first(self, name: str, mode: str, seconds: float) -> None:
        st = self.stats(name, mode)
        st.first_s = _ewma(st.first_s, seconds, self._alpha)
        st.samples += 1
        st.recent.append(seconds)

    def record_throughput(self, name: str, mode: str, tokens: int, seconds: float) -> None:
        if tokens <= 0 or seconds <= 0:
            return
        st = self.stats(name, mode)
        st.tokens_per_s = _ewma(st.tokens_per_s, tokens / seconds, self._alpha)

    def hedge_delay(self, name: str, mode: str, min_samples: int, floor_s: float) -> float | None:
        """When to send a hedged request: this deployment's recent p95, once it has enough samples."""
        st = self._stats.get((name, mode))
        if st is None or st.samples < min_samples:
            return None
        p95 = st.p95()
        return None if p95 is None else max(floor_s, p95)

    def order(self, chain: Sequence[ModelEntry], latency_class: str, mode: str) -> list[ModelEntry]:
        """The chain in the order a latency class prefers; `standard` keeps the catalogue's order."""
        if latency_class == "realtime":
            # Unmeasured deployments sort first so they get measured; ties keep catalogue order.
            def speed(m: ModelEntry) -> float:
                st = self._stats.get((m.name, mode)) or self._stats.get((m.name, _other(mode)))
                return st.first_s if st is not None and st.first_s is not None else 0.0

            return sorted(chain, key=speed)
        if latency_class == "batch":
            return sorted(chain, key=lambda m: m.cost(3, 1))  # a typical 3:1 prompt:completion mix
        return list(chain)

    def snapshot(self) -> dict[str, dict[str, float | int | None]]:
        """`{"<deployment>/<mode>": {first_s, p95_s, tokens_per_s, samples}}` for metrics."""
        return {
            f"{name}/{mode}": {
                "first_s": st.first_s,
                "p95_s": st.p95(),
                "tokens_per_s": st.tokens_per_s,
                "samples": st.samples,
            }
            for (name, mode), st in sorted(self._stats.items())
        }


def _other(mode: str) -> str:
    return "complete" if mode == "stream" else "stream"
