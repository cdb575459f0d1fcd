"""`InFlightLimiter`: a per-process bound on requests in progress, and the draining switch for shutdown.

Pure: no I/O; the HTTP middleware in `reliability.web` consults it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class InFlightLimiter:
    """Counts requests in progress; refuses new ones beyond `limit` or once draining has begun."""

    limit: int
    in_flight: int = 0
    refused: int = 0
    draining: bool = False

    def try_enter(self) -> bool:
        if self.draining or self.in_flight >= self.limit:
            self.refused += 1
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1

    def start_draining(self) -> None:
        """From now on every new request is refused (503) while the ones in progress finish."""
        self.draining = True
