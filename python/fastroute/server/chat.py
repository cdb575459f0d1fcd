"""`POST /v1/chat/completions`: HTTP framing around the gateway (body limits, headers, SSE relay)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiohttp import web

from fastroute.chat_request import parse_chat_request, parse_json_body
from fastroute.errors import FastrouteError, PayloadTooLarge, UnsupportedMediaType
from fastroute.gateway import Gateway
from fastroute.pipeline import RequestContext
from fastroute.server import sse
from fastroute.server.keys import GATEWAY, SETTINGS
from fastroute.server.middleware import REQUEST_ID, request_id

log = logging.getLogger("fastroute.server")
_JSON_TYPES = ("application/json", "")


async def read_body(request: web.Request, limit: int) -> bytes:
    """Reads the body, refusing wrong content types (415) and bodies over `limit` bytes (413)."""
    ctype = request.content_type if request.headers.get("Content-Type") else ""
    if ctype not in _JSON_TYPES and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {ctype!r}.")
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"The request body ({declared} bytes) is over the {limit}-byte limit.")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as e:
        raise PayloadTooLarge(f"The request body is over the {limit}-byte limit.") from e


def answer_headers(ctx: RequestContext) -> dict[str, str]:
    headers = {
        REQUEST_ID: ctx.request_id,
        "x-fastroute-overhead-ms": f"{ctx.overhead_s() * 1000:.3f}",
        "x-fastroute-cache": ctx.cache_status,
        "x-fastroute-attempts": str(ctx.attempts),
    }
    if ctx.decision is not None:
        headers["x-fastroute-tier"] = ctx.decision.tier
        headers["x-fastroute-route-reason"] = ctx.decision.reason
        headers["x-fastroute-model"] = ctx.served_by or ctx.decision.model.name
    if ctx.fallback_reason and ctx.served_by:
        headers["x-fastroute-fallback-reason"] = ctx.fallback_reason
    headers.update(ctx.response_headers)
    return headers


async def chat_completions(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    gateway = request.app[GATEWAY]
    raw = await read_body(request, settings.server.max_body_bytes)
    chat = parse_chat_request(parse_json_body(raw))
    ctx = RequestContext(request_id=request_id(request), headers=request.headers, chat=chat)
    try:
        await gateway.prepare(ctx)
        if chat.stream:
            return await _relay_stream(request, ctx, gateway)
        body = await gateway.complete(ctx)
        gateway.account(ctx)
        headers = answer_headers(ctx)
        headers["x-fastroute-cost-usd"] = f"{ctx.cost_usd:.8f}"
        response = web.Response(body=orjson.dumps(body), content_type="application/json", headers=headers)
        # Send the answer before the bookkeeping in `finish` (ledger, metrics, cache store, budget settle):
        # the client stops waiting for it. This connection's next request still waits for this handler.
        ctx.finished = time.perf_counter()
        await response.prepare(request)
        await response.write_eof()
        return response
    except FastrouteError as e:
        gateway.fail(ctx, e)
        if ctx.served_by is not None:
            gateway.account(ctx)
        e.headers.setdefault("x-fastroute-attempts", str(ctx.attempts))
        raise
    except asyncio.CancelledError:
        ctx.status = 499
        gateway.account(ctx)
        raise
    finally:
        await gateway.finish(ctx)


async def _relay_stream(request: web.Request, ctx: RequestContext, gateway: Gateway) -> web.StreamResponse:
    if ctx.cached_body is not None:
        return await _replay(request, ctx, gateway)
    upstream = await gateway.open_stream(ctx)
    resp = web.StreamResponse(headers=_stream_headers(ctx))
    keep_usage = ctx.chat.include_usage
    # Frames read but not yet written: chunks that arrived together go out in one write (one system
    # call); a chunk is held only while the next one is already buffered, never while waiting on the upstream.
    held: list[bytes] = []
    try:
        await resp.prepare(request)
        chunks = upstream.__aiter__()
        while True:
            t0 = time.perf_counter()
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            finally:
                ctx.upstream_s += time.perf_counter() - t0
            if ctx.ttft_s is None:
                ctx.ttft_s = time.perf_counter() - ctx.started
            data = chunk.data
            text = sse.chunk_text(data)
            if text:
                ctx.streamed_text.append(text)
            # a usage-only chunk the client did not ask for (fastroute asks upstream for accounting) is dropped
            if keep_usage or data.get("choices") or "usage" not in data:
                held.append(chunk.raw if chunk.raw is not None else sse.frame(data))
            if held and not upstream.buffered():
                await resp.write(b"".join(held))
                held.clear()
        gateway.account(ctx, upstream.usage)
        held.append(sse.cost_comment(ctx.cost_usd) + sse.DONE)
        await resp.write(b"".join(held))
    except FastrouteError as e:
        # Mid-stream failure: bytes already reached the client, so say so explicitly and end cleanly.
        gateway.fail(ctx, e)
        log.warning("request %s: stream failed after it started: %s", ctx.request_id, e.message)
        held.append(sse.error_frame(e.message, e.error_type, e.code) + sse.DONE)
        await resp.write(b"".join(held))
    except (ConnectionResetError, asyncio.CancelledError):
        ctx.status = 499  # client went away; the upstream stream is cut in `finally`
        raise
    finally:
        await upstream.aclose()
        gateway.account(ctx, upstream.usage)
    await resp.write_eof()
    return resp


def _stream_headers(ctx: RequestContext) -> dict[str, str]:
    headers = answer_headers(ctx)
    if ctx.decision is not None and ctx.analysis is not None and ctx.cached_body is None:
        # The final cost is unknown when headers leave: send the prompt-side cost and say so. The final
        # figure goes into the closing SSE comment and the ledger.
        # priced at the deployment that answered (failover or a hedge may have moved off the chain's head)
        model = next((m for m in ctx.decision.chain if m.name == ctx.served_by), ctx.decision.model)
        headers["x-fastroute-cost-usd"] = f"{model.cost(ctx.analysis.tokens, 0):.8f}"
        headers["x-fastroute-cost-basis"] = "prompt-estimate"
    headers.update({"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    return headers


async def _replay(request: web.Request, ctx: RequestContext, gateway: Gateway) -> web.StreamResponse:
    assert ctx.cached_body is not None
    gateway.account(ctx)
    headers = _stream_headers(ctx)
    headers["x-fastroute-cost-usd"] = f"{ctx.cost_usd:.8f}"
    resp = web.StreamResponse(headers=headers)
    await resp.prepare(request)
    payload: list[bytes] = [
        sse.frame(c) for c in sse.completion_to_chunks(ctx.cached_body, include_usage=ctx.chat.include_usage)
    ]
    payload.append(sse.DONE)
    await resp.write(b"".join(payload))
    await resp.write_eof()
    return resp


def models_payload(gateway: Gateway) -> dict[str, Any]:
    created = 0
    data = [{"id": "auto", "object": "model", "created": created, "owned_by": "fastroute", "tier": "auto"}]
    data += [
        {"id": m.name, "object": "model", "created": created, "owned_by": m.provider, "tier": m.tier}
        for m in gateway.catalogue.models.values()
    ]
    return {"object": "list", "data": data}


async def list_models(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(models_payload(request.app[GATEWAY])), content_type="application/json")
