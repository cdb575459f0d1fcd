"""HTTP side of reliability: the in-flight bound middleware, `/admin/upstreams`, and app wiring.

Everything lives under typed AppKeys; the Redis breaker store is opened and closed in `cleanup_ctx`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from importlib import resources

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from fastroute.catalogue import Catalogue
from fastroute.errors import InvalidRequest, Overloaded, RequestTimeout, error_body
from fastroute.reliability.breaker import BreakerBoard, BreakerPolicy, BreakerStore, InProcessBreakerStore
from fastroute.reliability.dispatcher import Dispatcher
from fastroute.reliability.latency import LatencyBoard
from fastroute.reliability.limiter import InFlightLimiter
from fastroute.reliability.settings import ReliabilitySettings
from fastroute.server.admin_auth import check_admin
from fastroute.settings import Settings

log = logging.getLogger("fastroute.reliability")

DISPATCHER = web.AppKey("dispatcher", Dispatcher)
LIMITER = web.AppKey("in_flight_limiter", InFlightLimiter)
BODY_TIMEOUT = web.AppKey("body_timeout_s", float)
MAX_BODY = web.AppKey("reliability_max_body_bytes", int)

# Paths that do upstream work and count against the in-flight bound; health and admin never do.
LIMITED_PREFIX = "/v1/"
RETRY_AFTER_S = "1"


def build_dispatcher(settings: Settings, catalogue: Catalogue, reliability: ReliabilitySettings) -> Dispatcher:
    """The dispatcher with breakers in Redis when `FASTROUTE_REDIS_URL` is set, else in this process."""
    policy = BreakerPolicy(
        failures=reliability.breaker_failures,
        window_s=reliability.breaker_window_s,
        cooldown_s=reliability.breaker_cooldown_s,
        # A probe that never reports (its request was cancelled) frees the slot after about one call's wait.
        probe_ttl_s=max(
            settings.upstream.connect_timeout_s + settings.upstream.first_token_timeout_s,
            reliability.breaker_cooldown_s,
        ),
        retry_after_cap_s=reliability.breaker_retry_after_cap_s,
    )
    store: BreakerStore
    sync_s = 0.0
    if settings.redis_url:
        from fastroute.reliability.breaker_redis import RedisBreakerStore

        store = RedisBreakerStore.from_url(settings.redis_url, policy)
        sync_s = reliability.breaker_sync_s
    else:
        store = InProcessBreakerStore(policy)
    board = BreakerBoard(store, catalogue.models, sync_s=sync_s)
    return Dispatcher(catalogue, reliability, board, LatencyBoard(reliability.ewma_alpha))


def install_reliability(app: web.Application, settings: Settings, dispatcher: Dispatcher) -> None:
    """Adds the in-flight bound, `/admin/upstreams`, draining on shutdown, and closing the breaker store.

    Call before the app starts; the middleware goes after (inside) the error middleware so its
    refusals are rendered as OpenAI-shaped errors.
    """
    app[DISPATCHER] = dispatcher
    app[LIMITER] = InFlightLimiter(settings.server.max_in_flight)
    app[BODY_TIMEOUT] = settings.reliability.body_timeout_s
    app[MAX_BODY] = settings.server.max_body_bytes  # a larger declared body is refused by the handler at once
    app.middlewares.append(in_flight_middleware)
    app.router.add_get("/admin/upstreams", admin_upstreams)
    app.router.add_get("/openapi.json", openapi_description)
    app.on_shutdown.append(_start_draining)
    app.on_response_prepare.append(_json_early_errors)
    app.cleanup_ctx.append(_close_breakers)


@web.middleware
async def in_flight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(LIMITED_PREFIX):
        return await handler(request)
    limiter = request.app[LIMITER]
    if not limiter.try_enter():
        why = "shutting down" if limiter.draining else f"at its limit of {limiter.limit} requests in flight"
        headers = {"Retry-After": RETRY_AFTER_S}
        if limiter.draining:
            headers["Connection"] = "close"
        raise Overloaded(f"The gateway is {why}; retry shortly.", headers=headers)
    try:
        declared = request.content_length
        if request.can_read_body and (declared is None or declared <= request.app[MAX_BODY]):
            # Read (and cache) the body here, bounded in time, so a slow sender holds a slot only briefly.
            try:
                if request.content.is_eof():
                    await request.read()  # already buffered (the usual case): no timer needed
                else:
                    async with asyncio.timeout(request.app[BODY_TIMEOUT]):
                        await request.read()
            except TimeoutError as e:
                message = f"The request body did not arrive within {request.app[BODY_TIMEOUT]:g}s."
                raise RequestTimeout(message, headers={"Connection": "close"}) from e
            except (RequestPayloadError, HttpProcessingError) as e:  # bad Content-Encoding, truncated chunks
                raise InvalidRequest("The request body could not be read (bad encoding or framing).") from e
        return await handler(request)
    finally:
        limiter.leave()


async def admin_upstreams(request: web.Request) -> web.Response:
    """`GET /admin/upstreams`: each deployment's breaker state and latency statistics."""
    check_admin(request)
    dispatcher = request.app[DISPATCHER]
    limiter = request.app[LIMITER]
    views = await dispatcher.breakers.views()
    latency = dispatcher.latency.snapshot()
    upstreams = {}
    for name, view in views.items():
        model = dispatcher.catalogue.models.get(name)
        entry: dict[str, object] = {**view.as_dict()}
        if model is not None:
            entry.update(provider=model.provider, tier=model.tier)
        entry["latency"] = {
            mode: latency[f"{name}/{mode}"] for mode in ("stream", "complete") if f"{name}/{mode}" in latency
        }
        upstreams[name] = entry
    body = {
        "upstreams": upstreams,
        "in_flight": limiter.in_flight,
        "max_in_flight": limiter.limit,
        "refused": limiter.refused,
        "draining": limiter.draining,
        "shared_state": type(dispatcher.breakers.store).__name__,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def openapi_description(request: web.Request) -> web.Response:
    """`GET /openapi.json`: the OpenAPI description of the HTTP surface (packaged beside the server)."""
    body = resources.files("fastroute.server").joinpath("openapi.json").read_bytes()
    return web.Response(body=body, content_type="application/json")


async def _json_early_errors(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp answers a few requests before any middleware runs (a bad `Expect` header: 417); give those
    the OpenAI error shape too."""
    # status first: a successful answer (nearly all) skips the isinstance, an ABC check of ~1 us
    if response.status >= 400 and isinstance(response, web.HTTPException) and response.content_type == "text/plain":
        message = f"Request refused: {response.reason}."
        response.body = orjson.dumps(error_body(message, "invalid_request_error", "bad_http_request"))
        response.content_type = "application/json"


async def _start_draining(app: web.Application) -> None:
    log.info("draining: new requests are refused while %d in flight finish", app[LIMITER].in_flight)
    app[LIMITER].start_draining()


async def _close_breakers(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[DISPATCHER].breakers.close()
