"""Middlewares: request ids, and rendering every error as an OpenAI-shaped JSON body.

One table maps aiohttp's own HTTP errors to fastroute errors; any unknown exception becomes a logged
500 carrying the request id (never a traceback to the client).
"""

from __future__ import annotations

import itertools
import logging
import os
import re

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from fastroute.errors import (
    FastrouteError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

log = logging.getLogger("fastroute.server")
REQUEST_ID = "x-request-id"
REQUEST_ID_KEY = web.RequestKey("fastroute_request_id", str)


class RequestIds:
    """Unique request ids for one app: a random 64-bit prefix (per process, as apps are built after any
    fork) and a counter, 32 hex digits like a uuid4 hex, for ~0.3 us instead of uuid4's ~5 us."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


REQUEST_IDS = web.AppKey("request_ids", RequestIds)
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_HTTP_ERRORS: dict[int, type[FastrouteError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def request_id(request: web.Request) -> str:
    # aiohttp answers some requests (e.g. a bad `Expect` header) before any middleware runs.
    return request.get(REQUEST_ID_KEY) or "-"


def error_response(error: FastrouteError, rid: str) -> web.Response:
    headers = {**error.headers, REQUEST_ID: rid}
    return web.Response(
        body=orjson.dumps(error.body()), status=error.http_status, content_type="application/json", headers=headers
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get(REQUEST_ID)
    rid = incoming if incoming and _VALID_ID.match(incoming) else request.app[REQUEST_IDS]()
    request[REQUEST_ID_KEY] = rid
    try:
        response = await handler(request)
    except FastrouteError as e:
        if e.http_status >= 500:
            log.warning("request %s failed: %s", rid, e.message)
        return error_response(e, rid)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        cls = _HTTP_ERRORS.get(e.status, InvalidRequest)
        message = {
            404: f"Unknown path {request.path}.",
            405: f"Method {request.method} is not allowed on {request.path}.",
            413: "The request body is too large.",
        }.get(e.status, e.reason)
        return error_response(cls(message, status=e.status), rid)
    except Exception:
        log.exception("unhandled error in request %s", rid)
        return error_response(InternalError(f"Internal error (request id {rid})."), rid)
    if not response.prepared:
        response.headers[REQUEST_ID] = rid
    return response
