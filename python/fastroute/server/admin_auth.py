"""The one admin-token check for every `/admin/*` route, `/metrics` and the dashboard.

The token is `FASTROUTE_ADMIN_TOKEN`, or a token whose SHA-256 the live policy declares
(`admin_token_sha256`), presented as `Authorization: Bearer <token>` or, where a browser must pass it, as
`?token=`. Read-only views are open when no token is configured at all (a local demo needs none);
`required=True` routes (policy changes, spend and audit exports) refuse with 403 until one is configured.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from fastroute.errors import AuthenticationError, PermissionDenied


def _no_hash() -> str | None:
    return None


@dataclass
class AdminAuth:
    token: str | None = field(default=None, repr=False)
    hashed: Callable[[], str | None] = _no_hash  # e.g. the live policy's admin_token_sha256

    @property
    def configured(self) -> bool:
        return self.token is not None or self.hashed() is not None

    def accepts(self, given: str) -> bool:
        if not given:
            return False
        if self.token is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return True
        digest = self.hashed()
        return digest is not None and hmac.compare_digest(hashlib.sha256(given.encode()).hexdigest(), digest)


ADMIN_AUTH = web.AppKey("admin_auth", AdminAuth)


def presented_token(request: web.Request, *, allow_query: bool) -> str:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.query.get("token", "") if allow_query else ""


def check_admin(request: web.Request, *, allow_query: bool = True, required: bool = False) -> None:
    """401 unless the admin token was presented; open when none is configured, unless `required` (403)."""
    auth = request.app.get(ADMIN_AUTH) or AdminAuth()
    if not auth.configured:
        if required:
            raise PermissionDenied("The admin API is disabled: set FASTROUTE_ADMIN_TOKEN (or admin_token_sha256).")
        return
    if not auth.accepts(presented_token(request, allow_query=allow_query)):
        where = "Authorization: Bearer <token>" + (" or ?token=" if allow_query else "")
        raise AuthenticationError(f"This endpoint needs the admin token ({where}).")
