"""The one admin-token check: open reads without a token, required routes closed, bearer or query token."""

from __future__ import annotations

import hashlib

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from fastroute.errors import AuthenticationError, PermissionDenied
from fastroute.server.admin_auth import ADMIN_AUTH, AdminAuth, check_admin


def _request(auth: AdminAuth | None, path: str = "/admin/x", headers: dict[str, str] | None = None) -> web.Request:
    app = web.Application()
    if auth is not None:
        app[ADMIN_AUTH] = auth
    return make_mocked_request("GET", path, headers=headers or {}, app=app)


def test_no_token_configured_opens_reads_and_closes_required_routes() -> None:
    check_admin(_request(AdminAuth()))
    check_admin(_request(None))
    with pytest.raises(PermissionDenied):
        check_admin(_request(AdminAuth()), required=True)


@pytest.mark.parametrize("required", [False, True])
def test_token_via_bearer_or_query(required: bool) -> None:
    auth = AdminAuth("s3cret")
    check_admin(_request(auth, headers={"Authorization": "Bearer s3cret"}), required=required)
    check_admin(_request(auth, path="/admin/x?token=s3cret"), required=required)
    for bad in (_request(auth), _request(auth, headers={"Authorization": "Bearer nope"})):
        with pytest.raises(AuthenticationError):
            check_admin(bad, required=required)
    with pytest.raises(AuthenticationError):
        check_admin(_request(auth, path="/admin/x?token=s3cret"), allow_query=False)


def test_policy_declared_hash_is_accepted() -> None:
    auth = AdminAuth(None, hashed=lambda: hashlib.sha256(b"from-policy").hexdigest())
    check_admin(_request(auth, headers={"Authorization": "Bearer from-policy"}), required=True)
    with pytest.raises(AuthenticationError):
        check_admin(_request(auth, headers={"Authorization": "Bearer other"}), required=True)
