"""Shared fixtures: a fault-injecting fake upstream on a real socket, and the gateway in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fastroute.catalogue import Catalogue
from fastroute.pipeline import Stage
from fastroute.server.app import create_app
from fastroute.settings import Settings
from fastroute.simulator.demo import demo_catalogue
from fastroute.simulator.upstream import Simulator
from tests.fakes.upstream import FaultPlan, fake_upstream


@pytest.fixture
def settings_env(tmp_path: Any) -> dict[str, str]:
    """The environment tests build `Settings` from; tests may add keys before the gateway starts.

    The response cache is off here so that tests repeating a prompt reach the upstream every time; the
    cache's own tests (tests/integration/test_cache_pipeline.py) and the subprocess tests run it as shipped.
    """
    return {"FASTROUTE_DATA_DIR": str(tmp_path / "data"), "FASTROUTE_CACHE_ENABLED": "false"}


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Simulator, FaultPlan, str]]:
    sim, plan = fake_upstream()
    server = TestServer(sim.app())
    await server.start_server()
    try:
        yield sim, plan, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
def catalogue(upstream: tuple[Simulator, FaultPlan, str]) -> Catalogue:
    return demo_catalogue(upstream[2])


GatewayFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def make_gateway(
    aiohttp_client: Any, catalogue: Catalogue, settings_env: dict[str, str]
) -> GatewayFactory:
    """Starts the gateway on a real socket: `await make_gateway(stages=[...], **env_overrides)`.

    `stages=None` gives the default stages built from the settings, as in production.
    """

    async def factory(
        stages: list[Stage] | None = None, catalogue_override: Catalogue | None = None, **env: str
    ) -> TestClient[web.Request, web.Application]:
        settings = Settings.from_env({**settings_env, **env})
        app = create_app(settings, catalogue=catalogue_override or catalogue, stages=stages)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return factory


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> TestClient[web.Request, web.Application]:
    return await make_gateway()


def chat_body(content: str = "What is the capital of France?", **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
