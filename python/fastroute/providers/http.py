"""HTTP plumbing shared by adapters: a keep-alive connection pool per upstream origin, error mapping, SSE lines.

Owns the upstream client objects (`providers.wire`); knows nothing of request semantics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from fastroute.errors import UpstreamError, UpstreamTimeout
from fastroute.providers.base import CallTimeouts
from fastroute.providers.wire import OriginPool, Timeouts
from fastroute.providers.wire_response import UpstreamResponse


class SessionPool:
    """One keep-alive `OriginPool` per upstream origin, created lazily, closed with the app."""

    def __init__(self, limit_per_host: int) -> None:
        self._limit = limit_per_host
        self._sessions: dict[str, OriginPool] = {}

    def session_for(self, base_url: str) -> OriginPool:
        session = self._sessions.get(base_url)
        if session is None or session.closed:
            parts = urlsplit(base_url)
            origin = f"{parts.scheme}://{parts.netloc}"
            session = self._sessions.get(origin)
            if session is None or session.closed:
                session = OriginPool(origin, self._limit, keepalive_s=15.0)
                self._sessions[origin] = session
            self._sessions[base_url] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = set(self._sessions.values()), {}
        for session in sessions:
            session.close()


TRANSPORT_ERRORS = (asyncio.TimeoutError, OSError)  # wire raises ConnectionError / TimeoutError


async def post(
    session: OriginPool,
    url: str,
    payload: bytes,
    headers: Mapping[str, str],
    timeouts: CallTimeouts,
    provider: str,
) -> UpstreamResponse:
    """POSTs and returns a successful response; error statuses and transport failures raise `UpstreamError`."""
    try:
        resp = await session.request("POST", url, payload, headers, client_timeout(timeouts))
    except TRANSPORT_ERRORS as e:
        raise transport_error(provider, e) from e
    if resp.status >= 400:
        try:
            body = await resp.read()
        except TRANSPORT_ERRORS:
            body = b""
        finally:
            resp.release()
        raise error_from_status(provider, resp.status, resp.headers, body)
    return resp


async def read_json(resp: UpstreamResponse, provider: str) -> Any:
    """Reads a whole JSON body; unreadable or non-JSON bodies raise `UpstreamError`."""
    try:
        raw = await resp.read()
    except TRANSPORT_ERRORS as e:
        raise transport_error(provider, e) from e
    finally:
        resp.release()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise malformed(provider, "body is not JSON") from e


def client_timeout(t: CallTimeouts) -> Timeouts:
    return Timeouts(connect_s=t.connect_s, read_s=t.first_token_s, total_s=t.total_s)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return max(0.0, float(raw) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return None
    return None


def upstream_message(body: bytes) -> str:
    """Best-effort error message out of an OpenAI- or Anthropic-shaped error body."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:300].decode("utf-8", "replace").strip()
        return text or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if isinstance(data.get("message"), str):
            return str(data["message"])
    return body[:300].decode("utf-8", "replace")


_CONTEXT_HINTS = ("context length", "context_length", "maximum context", "too many tokens", "prompt is too long")


def error_from_status(provider: str, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    """Maps an upstream error status to the status fastroute answers with, and whether to retry."""
    msg = upstream_message(body)
    text = f"Upstream '{provider}' answered {status}: {msg}"
    retry_after = parse_retry_after(headers)
    if status == 429:
        hdrs = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else {}
        return UpstreamError(
            text,
            status=429,
            retryable=True,
            retry_after=retry_after,
            upstream_status=status,
            reason="rate_limited",
            headers=hdrs,
        )
    if status in (401, 403):
        return UpstreamError(text, status=502, retryable=False, upstream_status=status, reason="upstream_auth")
    if status == 408:
        return UpstreamTimeout(text, retryable=True, upstream_status=status, reason="timeout")
    if status in (529, 503):
        return UpstreamError(
            text,
            status=503,
            retryable=True,
            retry_after=retry_after,
            upstream_status=status,
            reason="overloaded",
        )
    if status >= 500:
        return UpstreamError(text, status=502, retryable=True, upstream_status=status, reason=f"http_{status}")
    reason = "context_length" if any(h in msg.lower() for h in _CONTEXT_HINTS) else "bad_request"
    return UpstreamError(text, status=status, retryable=False, upstream_status=status, reason=reason)


def transport_error(provider: str, exc: BaseException) -> UpstreamError:
    """Connection refused/reset, timeouts and protocol errors: all retryable."""
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamTimeout(f"Upstream '{provider}' timed out.", retryable=True, reason="timeout")
    return UpstreamError(
        f"Upstream '{provider}' is unreachable: {type(exc).__name__}: {exc}",
        status=502,
        retryable=True,
        reason="connection",
    )


def malformed(provider: str, what: str) -> UpstreamError:
    return UpstreamError(
        f"Upstream '{provider}' sent a malformed answer: {what}", status=502, retryable=True, reason="malformed"
    )
