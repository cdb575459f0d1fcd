"""`POST /v1/feedback` and the quality admin routes: every path (200, 400, 401, 403, 404, 413, 415)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fastroute.errors import AuthenticationError
from fastroute.governance.policy_load import hash_key
from fastroute.pipeline import RequestContext, Stage, Tenant
from fastroute.quality import QualityStage
from fastroute.server.app import create_app
from fastroute.server.composition import build_stages
from fastroute.settings import Settings
from tests.integration import test_quality_loop as loop
from tests.integration.test_quality_loop import SHADOW_ENV, SUPPORT_PROMPTS, TUTOR_PROMPTS, Rig, RigFactory

rig = loop.rig  # the shared fixture: simulator with an answer-quality hook, gateway, quality stage

QUIET = {"FASTROUTE_REQUEST_LOG": "off"}


async def feedback(r: Rig, body: Any, app: str = "tutor", **headers: str) -> tuple[int, dict[str, Any]]:
    resp = await r.client.post("/v1/feedback", json=body, headers={"x-fastroute-app": app, **headers})
    return resp.status, await resp.json()


async def request_id(r: Rig, app: str = "tutor", prompt: str = TUTOR_PROMPTS[0]) -> str:
    _, headers, _ = await r.ask(app, prompt)
    return headers["x-request-id"]


def stored(r: Rig, rid: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(r.stage.store.path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM routes WHERE request_id = ?", (rid,))]
    finally:
        conn.close()


async def test_feedback_is_stored_with_the_routing_record(rig: RigFactory) -> None:
    r = await rig(**QUIET)
    rid = await request_id(r)
    status, body = await feedback(r, {"request_id": rid, "score": "up", "comment": "spot on"})
    assert status == 200
    assert body["object"] == "feedback" and body["request_id"] == rid and body["score"] == 1.0
    assert (body["tier"], body["model"]) == ("budget", "sim-budget")
    assert isinstance(body["feature_version"], int)
    (row,) = stored(r, rid)
    assert (row["app"], row["tier"], row["natural_tier"], row["model"]) == ("tutor", "budget", "budget", "sim-budget")
    assert row["feature_version"] == body["feature_version"]
    assert (row["feedback_score"], row["feedback_comment"]) == (1.0, "spot on")
    assert row["reason"].startswith("length heuristic")
    # A later score replaces the earlier one (a user changing their mind).
    status, _ = await feedback(r, {"request_id": rid, "score": 0.2})
    assert status == 200
    assert stored(r, rid)[0]["feedback_score"] == 0.2


async def test_another_tenants_request_is_forbidden(rig: RigFactory) -> None:
    r = await rig(**QUIET)
    rid = await request_id(r, "tutor")
    status, body = await feedback(r, {"request_id": rid, "score": "down"}, app="support")
    assert status == 403
    assert body["error"]["type"] == "permission_error" and body["error"]["param"] == "request_id"
    assert stored(r, rid)[0]["feedback_score"] is None


async def test_unknown_request_id_is_not_found(rig: RigFactory) -> None:
    r = await rig(**QUIET)
    status, body = await feedback(r, {"request_id": "never-seen-1", "score": 1})
    assert status == 404
    assert body["error"]["code"] == "not_found" and body["error"]["param"] == "request_id"


async def test_a_request_id_reused_by_two_tenants_belongs_to_each(rig: RigFactory) -> None:
    r = await rig(**QUIET)
    for app in ("tutor", "support"):
        resp = await r.client.post(
            "/v1/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-fastroute-app": app, "x-request-id": "shared-id-7"},
        )
        assert resp.status == 200
    assert (await feedback(r, {"request_id": "shared-id-7", "score": 1}, app="tutor"))[0] == 200
    assert (await feedback(r, {"request_id": "shared-id-7", "score": 0}, app="support"))[0] == 200
    rows = {row["app"]: row["feedback_score"] for row in stored(r, "shared-id-7")}
    assert rows == {"tutor": 1.0, "support": 0.0}


async def test_failed_requests_have_a_record_too(rig: RigFactory) -> None:
    from fastroute.simulator.upstream import Fault

    r = await rig(**QUIET)
    r.plan.add(Fault("status", status=400), model="sim-budget-1")  # not retryable: the request fails
    status, headers, _ = await r.ask("tutor", TUTOR_PROMPTS[0])
    assert status >= 400
    status, body = await feedback(r, {"request_id": headers["x-request-id"], "score": "down"})
    assert status == 200 and body["tier"] == "budget"
    # ...but a failure is not the tier's answer quality: it does not count towards recalibration
    assert r.stage.recalibrator.estimate("tutor", "budget", "feedback").n == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"score": 1}, "request_id"),
        ({"request_id": "x"}, "score"),
        ({"request_id": "x", "score": 2}, "score"),
        ({"request_id": "x", "score": "sideways"}, "score"),
        ({"request_id": "x", "score": 1, "comment": ["no"]}, "comment"),
        ([1, 2], None),
    ],
)
async def test_bad_bodies_are_refused(rig: RigFactory, body: Any, param: str | None) -> None:
    r = await rig(**QUIET)
    status, answer = await feedback(r, body)
    assert status == 400
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["param"] == param


async def test_malformed_oversized_and_wrongly_typed_bodies(rig: RigFactory) -> None:
    r = await rig(**QUIET)
    headers = {"x-fastroute-app": "tutor"}
    resp = await r.client.post(
        "/v1/feedback", data=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    resp = await r.client.post("/v1/feedback", data=b"request_id=x", headers={**headers, "Content-Type": "text/plain"})
    assert resp.status == 415
    big = b'{"request_id": "x", "score": 1, "comment": "' + b"a" * 70_000 + b'"}'
    resp = await r.client.post("/v1/feedback", data=big, headers={**headers, "Content-Type": "application/json"})
    assert resp.status == 413
    resp = await r.client.get("/v1/feedback")
    assert resp.status == 405


async def test_comments_stay_out_of_logs_unless_asked(rig: RigFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="fastroute")
    r = await rig(**QUIET)
    rid = await request_id(r)
    assert (await feedback(r, {"request_id": rid, "score": 0, "comment": "secret-comment-xyz"}))[0] == 200
    assert rid in caplog.text and "secret-comment-xyz" not in caplog.text

    caplog.clear()
    r = await rig(**QUIET, FASTROUTE_FEEDBACK_LOG_COMMENTS="true")
    rid = await request_id(r)
    assert (await feedback(r, {"request_id": rid, "score": 0, "comment": "secret-comment-xyz"}))[0] == 200
    assert "secret-comment-xyz" in caplog.text


async def test_thumbs_down_feedback_moves_routing_once_per_request(rig: RigFactory) -> None:
    r = await rig(**QUIET, FASTROUTE_RECALIBRATE_MIN_SAMPLES="10", FASTROUTE_RECALIBRATE_WINDOW="40")
    rid = await request_id(r)
    for _ in range(12):  # the same request judged again and again counts once
        assert (await feedback(r, {"request_id": rid, "score": "down"}))[0] == 200
    assert r.stage.recalibrator.route("tutor", "budget") == "budget"
    for i in range(9):  # with the first request's, 10 thumbs-down: enough evidence
        rid = await request_id(r, prompt=TUTOR_PROMPTS[i + 1])
        assert (await feedback(r, {"request_id": rid, "score": "down"}))[0] == 200
    assert r.stage.recalibrator.route("tutor", "budget") == "mid"
    _, headers, _ = await r.ask("tutor", TUTOR_PROMPTS[0])
    assert headers["x-fastroute-tier"] == "mid"
    _, headers, _ = await r.ask("support", SUPPORT_PROMPTS[0])
    assert headers["x-fastroute-tier"] == "budget"
    report = await (await r.client.get("/admin/quality?app=tutor")).json()
    (event,) = report["recalibration"]["events"]
    assert (event["signal"], event["action"], event["n"]) == ("feedback", "raise", 10)
    (row,) = [t for t in report["tiers"] if t["tier"] == "budget"]
    assert row["feedback"]["n"] == 10 and row["feedback"]["rate"] == 0.0

    # An operator can put routing back at once.
    resp = await r.client.post("/admin/quality/reset", json={"app": "tutor"})
    assert resp.status == 200 and (await resp.json())["restored"] == ["budget"]
    _, headers, _ = await r.ask("tutor", TUTOR_PROMPTS[0])
    assert headers["x-fastroute-tier"] == "budget"
    assert (await r.client.post("/admin/quality/reset", json={})).status == 400


async def test_admin_routes_need_the_admin_token_when_set(rig: RigFactory) -> None:
    r = await rig(**QUIET, FASTROUTE_ADMIN_TOKEN="s3cret")
    assert (await r.client.get("/admin/quality")).status == 401
    assert (await r.client.get("/admin/quality", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await r.client.post("/admin/quality/reset", json={"app": "a"})).status == 401
    resp = await r.client.get("/admin/quality", headers={"Authorization": "Bearer s3cret"})
    assert resp.status == 200
    report = await resp.json()
    assert report["object"] == "quality_report" and report["shadow"]["rate"] == 0.0  # off by default
    assert (await r.client.get("/admin/quality?token=s3cret&period=7d")).status == 200
    resp = await r.client.get("/admin/quality?token=s3cret&period=fortnight")
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "period"


async def test_shadow_report_shows_spend_and_counters(rig: RigFactory) -> None:
    r = await rig(**SHADOW_ENV)
    await r.ask("support", SUPPORT_PROMPTS[0])
    assert r.stage.shadow is not None
    await r.stage.shadow.drain()
    shadow = (await (await r.client.get("/admin/quality")).json())["shadow"]
    assert shadow["completed"] == 1 and shadow["spent_usd"] > 0 and shadow["judge"] == "auto"
    metrics = await (await r.client.get("/metrics")).text()
    assert 'fastroute_quality_rate{app="support",signal="shadow",tier="budget"} 1.0' in metrics
    assert 'fastroute_shadow_jobs_total{outcome="completed"} 1.0' in metrics
    assert f"fastroute_shadow_spent_usd {shadow['spent_usd']}" in metrics


class KeyTenants(Stage):
    """Governance stand-in that refuses callers without a key, for chat and feedback alike."""

    name = "key-tenants"

    async def identify(self, headers: Mapping[str, str]) -> Tenant:
        if headers.get("Authorization") != "Bearer k1":
            raise AuthenticationError("Unknown API key.")
        return Tenant(app="keyed", key_id="k1")

    async def on_request(self, ctx: RequestContext) -> None:
        ctx.tenant = await self.identify(ctx.headers)


async def test_feedback_callers_are_identified_like_chat_callers(aiohttp_client: Any, tmp_path: Any) -> None:
    settings = Settings.from_env({"FASTROUTE_DATA_DIR": str(tmp_path), **QUIET})
    from fastroute.simulator.demo import demo_catalogue

    catalogue = demo_catalogue("http://127.0.0.1:9")  # never called: the request is refused first
    quality = next(s for s in build_stages(settings, catalogue) if isinstance(s, QualityStage))
    app = create_app(settings, catalogue=catalogue, stages=[quality, KeyTenants()])
    client = await aiohttp_client(app)
    resp = await client.post("/v1/feedback", json={"request_id": "abc", "score": 1})
    assert resp.status == 401
    resp = await client.post(
        "/v1/feedback", json={"request_id": "abc", "score": 1}, headers={"Authorization": "Bearer k1"}
    )
    assert resp.status == 404


async def test_no_feedback_route_when_quality_is_off(rig: RigFactory) -> None:
    r = await rig(**QUIET, FASTROUTE_QUALITY="off")
    status, _ = await feedback(r, {"request_id": "abc", "score": 1})
    assert status == 404
    assert (await r.client.get("/admin/quality")).status == 404
    _, headers, _ = await r.ask("tutor", TUTOR_PROMPTS[0])  # chat is unaffected
    assert headers["x-fastroute-tier"] == "budget"


KEY_POLICY = f"""
require_keys: true
applications:
  tutor:
    keys: [{{id: tutor-prod, sha256: {hash_key("sk-tutor-1")}}}]
  support:
    keys: [{{id: support-prod, sha256: {hash_key("sk-support-1")}}}]
    allowed_tiers: [budget, mid]
"""


async def test_with_governance_virtual_keys_and_tier_policy(rig: RigFactory, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(KEY_POLICY)
    r = await rig(**SHADOW_ENV, FASTROUTE_POLICY=str(policy))

    async def chat(key: str, prompt: str) -> Any:
        return await r.client.post(
            "/v1/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": prompt}]},
            headers={"Authorization": f"Bearer {key}"},
        )

    async def rate(key: str | None, rid: str) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        resp = await r.client.post("/v1/feedback", json={"request_id": rid, "score": "up"}, headers=headers)
        return resp.status

    resp = await chat("sk-tutor-1", TUTOR_PROMPTS[0])
    assert resp.status == 200
    rid = resp.headers["x-request-id"]
    assert await rate("sk-support-1", rid) == 403  # another tenant's key
    assert await rate("sk-nobody", rid) == 401  # not a virtual key of this gateway
    assert await rate(None, rid) == 401  # keys are required
    assert await rate("sk-tutor-1", rid) == 200
    (row,) = stored(r, rid)
    assert (row["app"], row["key_id"], row["department"]) == ("tutor", "tutor-prod", "default")

    # support may not use the frontier tier: its prompts are never sent there for shadow evaluation either
    resp = await chat("sk-support-1", SUPPORT_PROMPTS[0])
    assert resp.status == 200
    assert r.stage.shadow is not None
    await r.stage.shadow.drain()
    assert r.stage.shadow.counters.offered == 1  # the tutor request only
