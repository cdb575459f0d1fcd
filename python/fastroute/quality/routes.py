"""HTTP surface of the quality loop: `POST /v1/feedback`, `GET /admin/quality`, `POST /admin/quality/reset`.

Feedback is authorised for the tenant that made the request: the caller is identified exactly as for
chat requests (governance's virtual keys / `x-fastroute-app`, through a `TenantIdentifier`). The admin
routes take the admin token (when set) as `Authorization: Bearer <token>` or `?token=`, like `/admin/stats`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import orjson
from aiohttp import web

from fastroute.chat_request import parse_json_body
from fastroute.errors import InvalidRequest
from fastroute.pipeline import Tenant
from fastroute.quality.feedback import parse_feedback
from fastroute.quality.report import DEFAULT_PERIOD, PERIODS, quality_report
from fastroute.quality.stage import QualityStage
from fastroute.server.admin_auth import check_admin
from fastroute.server.chat import read_body

FEEDBACK_BODY_LIMIT = 64 * 1024


@runtime_checkable
class TenantIdentifier(Protocol):
    """Who is calling, from request headers; raises `AuthenticationError` / `PermissionDenied` to refuse."""

    async def identify(self, headers: Mapping[str, str]) -> Tenant: ...


class NoTenancy:
    """Without governance every request belongs to the default tenant, for chat and feedback alike."""

    async def identify(self, headers: Mapping[str, str]) -> Tenant:
        return Tenant()


QUALITY = web.AppKey("quality", QualityStage)
IDENTIFIER = web.AppKey("quality_tenants", TenantIdentifier)


def install(app: web.Application, stage: QualityStage, tenants: TenantIdentifier | None = None) -> None:
    app[QUALITY] = stage
    app[IDENTIFIER] = tenants or NoTenancy()
    app.router.add_post("/v1/feedback", post_feedback)
    app.router.add_get("/admin/quality", get_quality)
    app.router.add_post("/admin/quality/reset", post_reset)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def post_feedback(request: web.Request) -> web.Response:
    tenant = await request.app[IDENTIFIER].identify(request.headers)
    feedback = parse_feedback(parse_json_body(await read_body(request, FEEDBACK_BODY_LIMIT)))
    return _json(await request.app[QUALITY].feedback(tenant, feedback))


async def get_quality(request: web.Request) -> web.Response:
    """`?period=1h|24h|7d|30d|all` (default 24h) and an optional `app`."""
    check_admin(request)
    period = request.query.get("period", DEFAULT_PERIOD)
    if period not in PERIODS:
        raise InvalidRequest(f"Unknown period {period!r}; use one of {', '.join(PERIODS)}.", param="period")
    app = request.query.get("app") or None
    return _json(await quality_report(request.app[QUALITY], period=period, app=app))


async def post_reset(request: web.Request) -> web.Response:
    """`{"app": name}`: restores every tier recalibration demoted for that application."""
    check_admin(request)
    data = parse_json_body(await read_body(request, FEEDBACK_BODY_LIMIT))
    app = data.get("app") if isinstance(data, dict) else None
    if not isinstance(app, str) or not app:
        raise InvalidRequest("'app' is required: the application whose routing to restore.", param="app")
    return _json({"object": "quality_reset", "app": app, "restored": request.app[QUALITY].reset(app)})
