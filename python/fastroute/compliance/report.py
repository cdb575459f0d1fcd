"""The AI-use record: `GET /admin/report?since=&until=&format=json|csv`, per application, from the ledger.

Counts per rule, model and region for a period, with each application's declared purpose and risk class.
Computed from ledger records only (no prompt text ever); the admin token guards it like the other /admin routes.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from fastroute.compliance.policy import Compliance
from fastroute.errors import InvalidRequest
from fastroute.governance.admin import LEDGER, RUNTIME, check_admin, parse_when
from fastroute.ledger import LedgerRecord

MAX_RECORDS = 1_000_000


def build_report(records: Iterable[LedgerRecord], compliance: Compliance | None) -> list[dict[str, Any]]:
    """One entry per application: declared use, request/outcome counts, and counts per rule, model, region."""
    apps: dict[str, dict[str, Any]] = {}
    for r in records:
        entry = apps.get(r.app)
        if entry is None:
            scope = compliance.for_app(r.app, r.department) if compliance is not None else None
            entry = apps[r.app] = {
                "app": r.app, "department": r.department,
                "purpose": scope.purpose if scope is not None else None,
                "risk_class": scope.risk_class if scope is not None else "unclassified",
                "requests": 0, "served": 0, "refused": 0, "failed": 0,
                "rules": Counter(), "models": Counter(), "regions": Counter(),
            }
        entry["requests"] += 1
        outcome = "served" if r.status < 400 else "refused" if r.status < 500 else "failed"
        entry[outcome] += 1
        if r.model is not None and r.status < 400:
            entry["models"][r.model] += 1
        for d in r.decisions:
            kind, _, rest = d.partition(":")
            if kind == "rule":
                action, _, name = rest.partition(":")
                entry["rules"][f"{name.split(':', 1)[0]}:{action}"] += 1
            elif kind == "region":
                entry["regions"][rest] += 1
    out = []
    for name in sorted(apps):
        e = apps[name]
        out.append({**e, **{k: dict(sorted(e[k].items())) for k in ("rules", "models", "regions")}})
    return out


def report_csv(report: list[dict[str, Any]]) -> str:
    """Flat rows: app, purpose, risk_class, dimension (requests/outcome/rule/model/region), key, count."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["app", "department", "purpose", "risk_class", "dimension", "key", "count"])
    for e in report:
        head = [e["app"], e["department"], e["purpose"] or "", e["risk_class"]]
        for k in ("requests", "served", "refused", "failed"):
            w.writerow([*head, "outcome", k, e[k]])
        for dim, key in (("rule", "rules"), ("model", "models"), ("region", "regions")):
            for name, count in e[key].items():
                w.writerow([*head, dim, name, count])
    return buf.getvalue()


async def get_report(request: web.Request) -> web.Response:
    check_admin(request)
    q = request.query
    fmt = q.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidRequest("'format' must be json or csv.", param="format")
    since, until = parse_when(q.get("since"), "since"), parse_when(q.get("until"), "until")
    await request.app[LEDGER].flush()
    records = await request.app[LEDGER].records(since=since, until=until, limit=MAX_RECORDS)
    comp = request.app[RUNTIME].holder.current.compliance
    report = build_report(records, comp if isinstance(comp, Compliance) else None)
    if fmt == "csv":
        return web.Response(text=report_csv(report), content_type="text/csv", headers={"Cache-Control": "no-store"})
    body = {"object": "report", "since": since, "until": until, "records": len(records), "data": report}
    return web.Response(body=orjson.dumps(body), content_type="application/json", headers={"Cache-Control": "no-store"})


def install(app: web.Application) -> None:
    """Adds `/admin/report` when governance installed its runtime and ledger on the app."""
    if RUNTIME in app and LEDGER in app:
        app.router.add_get("/admin/report", get_report)
