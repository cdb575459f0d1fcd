"""A fault-injecting fake upstream: the product's simulator with a programmable fault queue."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastroute.simulator.upstream import Fault, SimulatedModel, Simulator

FAST_MODELS: dict[str, SimulatedModel] = {
    "sim-budget-1": SimulatedModel(),
    "sim-mid-1": SimulatedModel(),
    "sim-frontier-1": SimulatedModel(),
}


@dataclass
class FaultPlan:
    """Faults to inject, consumed in order; each may target one upstream model id (None = any)."""

    queue: deque[tuple[str | None, Fault]] = field(default_factory=deque)

    def add(self, fault: Fault, *, model: str | None = None, times: int = 1) -> None:
        for _ in range(times):
            self.queue.append((model, fault))

    def __call__(self, flavour: str, body: dict[str, Any]) -> Fault | None:
        for i, (model, fault) in enumerate(self.queue):
            if model is None or model == body.get("model"):
                del self.queue[i]
                return fault
        return None


def fake_upstream(models: dict[str, SimulatedModel] | None = None) -> tuple[Simulator, FaultPlan]:
    plan = FaultPlan()
    return Simulator(dict(models or FAST_MODELS), fault_hook=plan), plan


def serve_config(base_url: str, *, input_cost: float = 1e-06, output_cost: float = 2e-06) -> dict[str, Any]:
    """A `FASTROUTE_CONFIG` for `fastroute serve` subprocesses: three tiers, all on one simulator."""
    price = {"input_cost_per_token": input_cost, "output_cost_per_token": output_cost}
    return {
        "replace_catalogue": True,
        "providers": {"sim": {"kind": "openai", "base_url": f"{base_url}/v1"}},
        "models": {
            f"sim-{tier}": {"provider": "sim", "upstream_model": f"sim-{tier}-1", "tier": tier, **price}
            for tier in ("budget", "mid", "frontier")
        },
        "tiers": {tier: [f"sim-{tier}"] for tier in ("budget", "mid", "frontier")},
    }
