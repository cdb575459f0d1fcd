"""The app factory and composition root: builds the gateway from `Settings` and wires routes and stages.

Everything the app holds lives under typed AppKeys and is created/closed in `cleanup_ctx`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence

import orjson
from aiohttp import web

from fastroute.catalogue import Catalogue
from fastroute.config_file import load_config_file
from fastroute.gateway import Gateway
from fastroute.native import PromptAnalyzer
from fastroute.pipeline import Stage
from fastroute.prompt import conversation_text
from fastroute.providers import build_providers
from fastroute.providers.base import CallTimeouts
from fastroute.providers.http import SessionPool
from fastroute.reliability.wiring import build_dispatcher, install_reliability
from fastroute.routing.loader import load_scorer
from fastroute.routing.router import Router
from fastroute.server.admin_auth import ADMIN_AUTH, AdminAuth
from fastroute.server.chat import chat_completions, list_models
from fastroute.server.composition import build_stages, install_routes
from fastroute.server.keys import GATEWAY, SETTINGS
from fastroute.server.middleware import REQUEST_IDS, RequestIds, error_middleware
from fastroute.settings import Settings

log = logging.getLogger("fastroute.server")
POOL = web.AppKey("session_pool", SessionPool)


def load_catalogue(settings: Settings) -> Catalogue:
    """The packaged default catalogue, overlaid with the config file's `providers` / `models` / `tiers`."""
    catalogue = Catalogue.default()
    if settings.config_path is not None:
        raw = load_config_file(settings.config_path)
        if raw.get("replace_catalogue"):
            catalogue = Catalogue.from_mapping(raw, source=str(settings.config_path))
        else:
            catalogue = Catalogue.from_mapping(raw, source=str(settings.config_path), base=catalogue)
    return catalogue


def create_app(
    settings: Settings,
    *,
    catalogue: Catalogue | None = None,
    secrets: Mapping[str, str] | None = None,
    stages: Sequence[Stage] | None = None,
) -> web.Application:
    """Builds the aiohttp application. `secrets` maps env-var names (providers' `api_key_env`) to keys.

    `stages=None` builds the default stages from settings (`composition.build_stages`).
    """
    catalogue = catalogue or load_catalogue(settings)
    analyzer = PromptAnalyzer.from_models_dir(settings.models_dir)
    stage_list = list(stages) if stages is not None else build_stages(settings, catalogue, analyzer)
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.server.max_body_bytes)
    app[REQUEST_IDS] = RequestIds()
    pool = SessionPool(settings.upstream.pool_limit_per_host)
    providers = build_providers(catalogue, pool, secrets or {})
    scorer = load_scorer(settings.models_dir, settings.router)
    router = Router(catalogue, scorer, allow_tier_header=settings.router.allow_tier_header)
    timeouts = CallTimeouts(
        connect_s=settings.upstream.connect_timeout_s,
        first_token_s=settings.upstream.first_token_timeout_s,
        total_s=settings.upstream.total_timeout_s,
    )
    dispatcher = build_dispatcher(settings, catalogue, settings.reliability)
    gateway = Gateway(catalogue, providers, router, analyzer, conversation_text, stage_list, timeouts, dispatcher)
    app[SETTINGS] = settings
    app[ADMIN_AUTH] = AdminAuth(settings.admin_token)
    app[GATEWAY] = gateway
    app[POOL] = pool
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    install_routes(app, settings, stage_list)
    install_reliability(app, settings, dispatcher)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    gateway = app[GATEWAY]
    started: list[Stage] = []
    try:
        for stage in gateway.stages:
            await stage.start()
            started.append(stage)
        yield
    finally:
        await gateway.wait_idle()  # requests that ended before shutdown keep their bookkeeping
        for stage in reversed(started):
            try:
                await stage.close()
            except Exception:
                log.exception("stage %s failed to close", stage.name)
        await app[POOL].close()


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps({"status": "ok"}), content_type="application/json")


async def _readyz(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    body = {"status": "ready", "models": len(gateway.catalogue.models), "scorer": gateway.router.scorer is not None}
    return web.Response(body=orjson.dumps(body), content_type="application/json")
