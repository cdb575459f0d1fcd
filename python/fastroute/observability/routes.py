"""HTTP surface of visibility: `GET /metrics`, `GET /admin/stats`, `GET /dashboard` (+ its static assets).

The admin token (when set) guards stats and the dashboard, as `Authorization: Bearer <token>` or
`?token=<token>` (the dashboard page keeps the query token for its own fetches); `/metrics` too unless
`FASTROUTE_METRICS_PUBLIC` is on. Assets (HTML/CSS/JS) are package data: no build step, no CDN.
"""

from __future__ import annotations

from importlib import resources

import orjson
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from fastroute.errors import InvalidRequest, NotFound
from fastroute.observability.sources import breaker_probe, call_probe
from fastroute.observability.stage import ObservabilityStage
from fastroute.observability.stats import DEFAULT_PERIOD, PERIODS
from fastroute.server.admin_auth import check_admin
from fastroute.server.keys import GATEWAY
from fastroute.server.middleware import request_id

OBSERVABILITY = web.AppKey("observability", ObservabilityStage)
CHAT_PATH = "/v1/chat/completions"
ASSETS = {
    "dashboard.js": "application/javascript",
    "dashboard.css": "text/css",
}


def install(app: web.Application, stage: ObservabilityStage) -> None:
    """Adds the routes and the response hook that counts chat requests refused before the pipeline."""
    app[OBSERVABILITY] = stage
    app.on_response_prepare.append(_on_response_prepare)
    app.on_startup.append(_attach_sources)
    if stage.settings.metrics:
        app.router.add_get("/metrics", metrics)
    if stage.settings.dashboard:
        app.router.add_get("/admin/stats", admin_stats)
        app.router.add_get("/dashboard", dashboard)
        app.router.add_get("/dashboard/{asset}", dashboard_asset)


async def _attach_sources(app: web.Application) -> None:
    """Finds the optional sources other subsystems installed: breakers (reliability's dispatcher on the
    app) and budgets (governance's tenant stage in the pipeline). Explicit `attach` calls win."""
    stage = app[OBSERVABILITY]
    if stage.stats.health is None:
        try:
            from fastroute.reliability.wiring import DISPATCHER
        except ImportError:
            pass
        else:
            dispatcher = app.get(DISPATCHER)
            if dispatcher is not None:
                stage.attach(health=breaker_probe(dispatcher.breakers))
    if stage.stats.budgets is None:
        try:
            from fastroute.governance.tenants import TenantStage
            from fastroute.governance.wiring import budget_probe
        except ImportError:
            return
        tenants = next((s for s in app[GATEWAY].stages if isinstance(s, TenantStage)), None)
        if tenants is not None:
            stage.attach(budgets=budget_probe(tenants.runtime))


async def _on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == CHAT_PATH:
        request.app[OBSERVABILITY].response_started(request_id(request), response.status, request.path)


async def metrics(request: web.Request) -> web.Response:
    stage = request.app[OBSERVABILITY]
    if not stage.settings.metrics_public:
        check_admin(request)
    health = await call_probe(stage.stats.health)
    budgets = await call_probe(stage.stats.budgets)
    stage.metrics.update_probes(health, budgets)
    return web.Response(body=stage.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def admin_stats(request: web.Request) -> web.Response:
    """`?period=15m|1h|24h|7d|30d|all` (default 24h), optional `app` and `department` filters."""
    check_admin(request)
    period = request.query.get("period", DEFAULT_PERIOD)
    if period not in PERIODS:
        raise InvalidRequest(f"Unknown period {period!r}; use one of {', '.join(PERIODS)}.", param="period")
    app = request.query.get("app") or None
    department = request.query.get("department") or None
    report = await request.app[OBSERVABILITY].stats.snapshot(period, app=app, department=department)
    return web.Response(
        body=orjson.dumps(report), content_type="application/json", headers={"Cache-Control": "no-store"}
    )


def _asset(name: str) -> bytes:
    return resources.files("fastroute.observability").joinpath("static", name).read_bytes()


async def dashboard(request: web.Request) -> web.Response:
    check_admin(request)
    return web.Response(
        body=_asset("dashboard.html"), content_type="text/html", charset="utf-8",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def dashboard_asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    if name not in ASSETS:
        raise NotFound(f"Unknown path {request.path}.")
    return web.Response(body=_asset(name), headers={"Content-Type": ASSETS[name], "Cache-Control": "no-cache"})
