"""Rates with confidence: the Wilson score interval, and a sliding window of pass/fail outcomes.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial rate; `(0.0, 1.0)` when there are no observations.

    Chosen over the normal approximation because it stays inside [0, 1] and is honest at small `n`
    and at rates near 0 or 1, which is exactly where a failing tier is first seen.
    """
    if n <= 0:
        return 0.0, 1.0
    p = min(1.0, max(0.0, successes / n))
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n)) / denom
    # clamp: rounding must never put the observed rate outside its own interval
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


@dataclass(frozen=True, slots=True)
class RateEstimate:
    """A rate over `n` observations with its Wilson interval."""

    n: int
    successes: float
    low: float
    high: float

    @property
    def rate(self) -> float | None:
        return self.successes / self.n if self.n else None

    @classmethod
    def of(cls, successes: float, n: int, z: float = 1.96) -> RateEstimate:
        low, high = wilson(successes, n, z)
        return cls(n=n, successes=successes, low=low, high=high)

    def as_dict(self) -> dict[str, float | int | None]:
        rate = self.rate
        return {
            "n": self.n,
            "rate": round(rate, 4) if rate is not None else None,
            "ci_low": round(self.low, 4),
            "ci_high": round(self.high, 4),
        }


class OutcomeWindow:
    """The last `size` pass/fail outcomes, with an O(1) running count of passes."""

    __slots__ = ("_outcomes", "_passes")

    def __init__(self, size: int) -> None:
        self._outcomes: deque[bool] = deque(maxlen=size)
        self._passes = 0

    def add(self, passed: bool) -> None:
        maxlen = self._outcomes.maxlen
        if maxlen is not None and len(self._outcomes) == maxlen and self._outcomes[0]:
            self._passes -= 1
        self._outcomes.append(passed)
        self._passes += int(passed)

    def clear(self) -> None:
        self._outcomes.clear()
        self._passes = 0

    def __len__(self) -> int:
        return len(self._outcomes)

    def estimate(self, z: float) -> RateEstimate:
        return RateEstimate.of(self._passes, len(self._outcomes), z)
