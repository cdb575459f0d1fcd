"""OpenAI-shaped bodies for errors aiohttp answers below the app (oversized headers, broken HTTP framing).

Those errors never reach a middleware: aiohttp's `RequestHandler.handle_error` writes plain text. An
`AppRunner` built here gives its connections a handler that writes the OpenAI error shape instead.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from fastroute.errors import error_body


class _JsonErrorRequestHandler(RequestHandler):
    __slots__ = ()

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status == 500 and isinstance(exc, UnicodeError):
            # aiohttp code that runs before any middleware (e.g. the `Expect` check) choked on undecodable
            # header bytes: the client's fault, not ours.
            status, message = 400, "a header value is not valid text"
        plain = super().handle_error(request, status, exc, message)  # logs, and refuses a half-sent response
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        if status >= 500:
            body = error_body("Internal error.", "server_error", "internal_error")
        else:
            text = (message or phrase).splitlines()[0].split(": b'")[0][:200]  # never echo the client's bytes
            body = error_body(f"Bad HTTP request: {text}", "invalid_request_error", "bad_http_request")
        resp = web.Response(status=plain.status, body=orjson.dumps(body), content_type="application/json")
        resp.force_close()
        return resp


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        handler.__class__ = _JsonErrorRequestHandler
        return handler


class JsonErrorAppRunner(web.AppRunner):
    """An `AppRunner` whose protocol-level errors (e.g. 431/400 for huge headers) are OpenAI-shaped JSON.

    It also shortens aiohttp's "lingering close" (reading and discarding an unread body after an early
    answer such as 408/413) from 10 s to `lingering_time` (1 s), so a slow sender is let go quickly.
    """

    def __init__(self, app: web.Application, *, lingering_time: float = 1.0, **kwargs: Any) -> None:
        super().__init__(app, lingering_time=lingering_time, **kwargs)

    async def _make_server(self) -> web.Server:
        server: Any = await super()._make_server()
        server.__class__ = _JsonErrorServer
        return server  # type: ignore[no-any-return]
