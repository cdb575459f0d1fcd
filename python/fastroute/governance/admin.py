"""Governance admin routes: `GET/PUT /admin/policy`, `GET /admin/spend`, `GET /admin/audit`,
`GET /admin/budgets`. All need the admin token (`FASTROUTE_ADMIN_TOKEN`, or the policy's
`admin_token_sha256`) as `Authorization: Bearer <token>` (or `?token=` on GETs).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import orjson
from aiohttp import web

from fastroute.errors import InvalidRequest
from fastroute.governance.policy_load import PolicyError
from fastroute.governance.runtime import GovernanceRuntime
from fastroute.ledger import GROUP_BY, SqliteLedger
from fastroute.server.admin_auth import ADMIN_AUTH, AdminAuth
from fastroute.server.admin_auth import check_admin as shared_check_admin

RUNTIME = web.AppKey("governance_runtime", GovernanceRuntime)
LEDGER = web.AppKey("governance_ledger", SqliteLedger)
POLICY_BODY_LIMIT = 1024 * 1024
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def install(
    app: web.Application, runtime: GovernanceRuntime, ledger: SqliteLedger | None, admin_token: str | None
) -> None:
    app[RUNTIME] = runtime
    if ledger is not None:
        app[LEDGER] = ledger
    auth = app.get(ADMIN_AUTH)
    if auth is None:
        auth = app[ADMIN_AUTH] = AdminAuth(admin_token)
    auth.hashed = lambda: runtime.holder.current.admin_token_sha256
    app.router.add_get("/admin/policy", get_policy)
    app.router.add_put("/admin/policy", put_policy)
    app.router.add_get("/admin/budgets", get_budgets)
    if ledger is not None:
        app.router.add_get("/admin/spend", get_spend)
        app.router.add_get("/admin/audit", get_audit)


def check_admin(request: web.Request, *, allow_query: bool = True) -> None:
    """Governance routes need the admin token even when nothing else does (403 until one is configured)."""
    shared_check_admin(request, allow_query=allow_query, required=True)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers={"Cache-Control": "no-store"}
    )


def parse_when(value: str | None, name: str, now: float | None = None) -> float | None:
    """Unix seconds, an ISO 8601 date/time (UTC if no zone), or a relative age like `30m`, `24h`, `7d`."""
    if value is None or value == "":
        return None
    now = time.time() if now is None else now
    rel = _RELATIVE.match(value)
    if rel:
        return now - float(rel.group(1)) * _UNITS[rel.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"'{name}' must be unix seconds, an ISO 8601 date/time or an age like 24h / 7d; got {value!r}.", param=name
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _filters(request: web.Request) -> dict[str, str]:
    return {k: v for k in ("app", "department", "key_id", "tier", "model") if (v := request.query.get(k))}


async def get_spend(request: web.Request) -> web.Response:
    """Spend from the ledger: `?app=&department=&key_id=&tier=&model=&since=&until=&group_by=app,model`."""
    check_admin(request)
    q = request.query
    group_by = tuple(g for g in q.get("group_by", "app").split(",") if g) if "group_by" in q else ("app",)
    unknown = [g for g in group_by if g not in GROUP_BY]
    if unknown:
        raise InvalidRequest(f"Unknown group_by {unknown[0]!r}; use any of {', '.join(GROUP_BY)}.", param="group_by")
    since, until = parse_when(q.get("since"), "since"), parse_when(q.get("until"), "until")
    rows = await request.app[LEDGER].spend(since=since, until=until, group_by=group_by, **_filters(request))
    return _json({"object": "list", "group_by": list(group_by), "since": since, "until": until, "data": rows})


async def get_audit(request: web.Request) -> web.Response:
    """The newest ledger records (who, model/tier, why, cost, policy decisions); never prompt text."""
    check_admin(request)
    q = request.query
    try:
        limit = max(1, min(1000, int(q.get("limit", "100"))))
    except ValueError:
        raise InvalidRequest("'limit' must be an integer.", param="limit") from None
    since, until = parse_when(q.get("since"), "since"), parse_when(q.get("until"), "until")
    records = await request.app[LEDGER].records(since=since, until=until, limit=limit, **_filters(request))
    return _json({"object": "list", "data": [r._asdict() for r in records]})


async def get_policy(request: web.Request) -> web.Response:
    check_admin(request)
    holder = request.app[RUNTIME].holder
    policy = holder.current
    return _json({
        "source": policy.source, "digest": policy.digest, "reloads": holder.reloads, "rejected": holder.rejected,
        "applications": sorted(policy.applications), "departments": sorted(policy.departments), "text": policy.text,
    })


async def put_policy(request: web.Request) -> web.Response:
    """Validates the body (YAML or JSON policy) and applies it here and, with Redis, on every replica."""
    check_admin(request, allow_query=False)
    raw = await request.content.read(POLICY_BODY_LIMIT + 1)
    if len(raw) > POLICY_BODY_LIMIT:
        raise InvalidRequest(f"The policy is over {POLICY_BODY_LIMIT} bytes.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The policy must be UTF-8 text.") from None
    holder = request.app[RUNTIME].holder
    previous = holder.current.digest
    try:
        policy = await holder.apply_and_publish(text, "PUT /admin/policy")
    except PolicyError as e:
        raise InvalidRequest(f"Policy rejected (the current policy stays): {e}", param="policy") from e
    return _json({"status": "applied", "digest": policy.digest, "changed": policy.digest != previous,
                  "applications": sorted(policy.applications)})


async def get_budgets(request: web.Request) -> web.Response:
    """Every declared budget in the current period: limit, settled spend and live reservations."""
    check_admin(request)
    rows = await request.app[RUNTIME].budget_levels()
    return _json({"object": "list", "data": rows})
