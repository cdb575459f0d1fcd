"""The demo set-up: simulated upstreams on loopback and a catalogue of three tiers pointing at them."""

from __future__ import annotations

from aiohttp import web

from fastroute.catalogue import Catalogue
from fastroute.simulator.upstream import DEMO_MODELS, Simulator


def demo_catalogue(base_url: str) -> Catalogue:
    """Budget and mid tiers through the OpenAI-compatible adapter, frontier through the Anthropic one.

    Prices mirror real models of each class (USD per token), so savings figures are realistic.
    """
    raw = {
        "providers": {
            "sim-openai": {"kind": "openai", "base_url": f"{base_url}/v1", "region": "eu", "retention": "none"},
            "sim-anthropic": {"kind": "anthropic", "base_url": base_url, "region": "us", "retention": "30d"},
        },
        "models": {
            "sim-budget": {"provider": "sim-openai", "upstream_model": "sim-budget-1", "tier": "budget",
                           "input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,
                           "max_input_tokens": 128000, "max_output_tokens": 4096},
            "sim-mid": {"provider": "sim-openai", "upstream_model": "sim-mid-1", "tier": "mid",
                        "input_cost_per_token": 8e-07, "output_cost_per_token": 4e-06,
                        "max_input_tokens": 200000, "max_output_tokens": 8192},
            "sim-frontier": {"provider": "sim-anthropic", "upstream_model": "sim-frontier-1", "tier": "frontier",
                             "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                             "max_input_tokens": 200000, "max_output_tokens": 8192},
            "sim-frontier-openai": {"provider": "sim-openai", "upstream_model": "sim-frontier-1", "tier": "frontier",
                                    "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
                                    "max_input_tokens": 128000, "max_output_tokens": 8192},
        },
        "tiers": {
            "budget": ["sim-budget"],
            "mid": ["sim-mid"],
            "frontier": ["sim-frontier", "sim-frontier-openai"],
        },
    }
    return Catalogue.from_mapping(raw, source="demo catalogue")


async def start_simulator(host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Starts the simulated upstream server; returns its runner and base URL."""
    runner = web.AppRunner(Simulator(dict(DEMO_MODELS)).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, f"http://{host}:{bound}"
