"""`RouteDecision`: the outcome of routing one request (tier, deployment chain, reason, score).

Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastroute.catalogue import ModelEntry


@dataclass(frozen=True, slots=True)
class RouteDecision:
    tier: str
    chain: tuple[ModelEntry, ...]
    reason: str
    score: float | None = None

    @property
    def model(self) -> ModelEntry:
        """The preferred deployment (the chain's head)."""
        return self.chain[0]
