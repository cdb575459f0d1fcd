"""The quality loop end to end: a budget tier that answers one application's prompts badly is detected by
shadow evaluation and that application's traffic moves up, within a bounded number of requests, while
another application's routing is unchanged and shadow spend stays within its budget."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from fastroute.catalogue import Catalogue
from fastroute.chat_request import message_text
from fastroute.pipeline import RequestContext, Stage, Tenant
from fastroute.quality import QualityStage
from fastroute.routing.router import Router
from fastroute.server.app import create_app
from fastroute.server.composition import build_stages
from fastroute.server.keys import GATEWAY
from fastroute.settings import Settings
from fastroute.simulator.demo import demo_catalogue
from fastroute.simulator.upstream import SimulatedModel, Simulator, approx_tokens
from tests.fakes.upstream import FAST_MODELS, FaultPlan

Client = TestClient[web.Request, web.Application]
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()
TUTOR_PROMPTS = [f"Calculate {a} * {b} and show the steps." for a in range(12, 40) for b in (7, 13)]
SUPPORT_PROMPTS = [f"How do I reset the password of account number {n}?" for n in range(100, 160)]


def reference_answer(prompt: str) -> str:
    """What a good model says: the same words for the same prompt, whatever the model."""
    seed = hashlib.blake2b(prompt.encode(), digest_size=8).digest()
    return "The answer: " + " ".join(WORDS[b % len(WORDS)] for b in seed) + "."


@dataclass
class AnswerQuality:
    """The simulated budget model answers arithmetic prompts badly while `broken` is set."""

    broken: bool = True

    def __call__(self, model: str, prompt: str, text: str) -> str:
        if self.broken and model == "sim-budget-1" and prompt.startswith("Calculate"):
            return "Sorry, numbers are hard; perhaps try asking somebody else about it."
        return reference_answer(prompt)


class HeaderTenants(Stage):
    """Stands in for governance: the tenant is the `x-fastroute-app` header, for chat and feedback alike."""

    name = "test-tenants"

    async def on_request(self, ctx: RequestContext) -> None:
        ctx.tenant = Tenant(app=ctx.headers.get("x-fastroute-app", "default"))

    async def identify(self, headers: Mapping[str, str]) -> Tenant:
        return Tenant(app=headers.get("x-fastroute-app", "default"))


@dataclass
class Rig:
    client: Client
    sim: Simulator
    plan: FaultPlan
    quality: AnswerQuality
    stage: QualityStage
    catalogue: Catalogue

    async def ask(self, app: str, prompt: str, **extra: Any) -> tuple[int, Mapping[str, str], Any]:
        body = {"model": "auto", "messages": [{"role": "user", "content": prompt}], **extra}
        resp = await self.client.post("/v1/chat/completions", json=body, headers={"x-fastroute-app": app})
        data = await resp.json() if not extra.get("stream") else await resp.text()
        return resp.status, resp.headers, data


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def rig(aiohttp_client: Any, tmp_path: Any) -> AsyncIterator[RigFactory]:
    servers: list[TestServer] = []

    async def make(models: dict[str, SimulatedModel] | None = None, **env: str) -> Rig:
        plan, quality = FaultPlan(), AnswerQuality()
        sim = Simulator(dict(models or FAST_MODELS), fault_hook=plan, answer_hook=quality)
        sim.stats.keep_bodies = 100_000
        server = TestServer(sim.app())
        await server.start_server()
        servers.append(server)
        catalogue = demo_catalogue(str(server.make_url("")).rstrip("/"))
        settings = Settings.from_env({"FASTROUTE_DATA_DIR": str(tmp_path / "data"), **env})
        stages = [*build_stages(settings, catalogue), HeaderTenants()]
        app = create_app(settings, catalogue=catalogue, stages=stages)
        # This exercises the quality loop, not the classifier: route by the documented length heuristic.
        app[GATEWAY].router = Router(catalogue, None)
        client: Client = await aiohttp_client(app)
        stage = next(s for s in stages if isinstance(s, QualityStage))
        return Rig(client, sim, plan, quality, stage, catalogue)

    yield make
    for server in servers:
        await server.close()


SHADOW_ENV = {
    "FASTROUTE_REQUEST_LOG": "off",
    "FASTROUTE_SHADOW_RATE": "1",
    "FASTROUTE_SHADOW_BUDGET_USD": "5",
    "FASTROUTE_SHADOW_CONCURRENCY": "2",
    "FASTROUTE_RECALIBRATE_MIN_SAMPLES": "10",
    "FASTROUTE_RECALIBRATE_WINDOW": "40",
}
MIN_SAMPLES, CONCURRENCY = 10, 2
# Decisions wait for min_samples outcomes; at most 4 x concurrency shadow jobs are pending at any time.
DETECTION_BOUND = MIN_SAMPLES + 4 * CONCURRENCY


def frontier_spend(sim: Simulator, catalogue: Catalogue) -> float:
    """What the frontier calls the simulator saw cost, priced independently of fastroute's own accounting."""
    total = 0.0
    for body in sim.stats.bodies:
        if body.get("model") != "sim-frontier-1":
            continue
        if isinstance(body["messages"][0].get("content"), list):  # Anthropic content blocks: sim-frontier
            prompt = "\n".join(b["text"] for m in body["messages"] for b in m["content"] if b.get("type") == "text")
            deployment = "sim-frontier"
        else:
            prompt = "\n".join(message_text(m) for m in body["messages"])
            deployment = "sim-frontier-openai"
        answer = reference_answer(prompt)
        total += catalogue.models[deployment].cost(approx_tokens(prompt), approx_tokens(answer))
    return total


async def test_bad_budget_answers_move_one_app_up_and_leave_the_other_alone(rig: RigFactory) -> None:
    r = await rig(**SHADOW_ENV)
    tutor_tiers: list[str] = []
    for i in range(40):
        status, headers, _ = await r.ask("tutor", TUTOR_PROMPTS[i])
        assert status == 200
        tutor_tiers.append(headers["x-fastroute-tier"])
        if tutor_tiers[-1] == "mid":  # the move is visible in the route reason
            assert "quality: budget demoted for app tutor, raised to mid" in headers["x-fastroute-route-reason"]
        status, headers, _ = await r.ask("support", SUPPORT_PROMPTS[i])
        assert status == 200
        assert headers["x-fastroute-tier"] == "budget"  # the other application is never moved
        assert "quality" not in headers["x-fastroute-route-reason"]

    assert tutor_tiers[0] == "budget"
    first_raised = tutor_tiers.index("mid")
    assert first_raised <= DETECTION_BOUND
    assert all(t == "mid" for t in tutor_tiers[first_raised:])  # and it stays up while budget stays bad

    assert r.stage.shadow is not None
    await r.stage.shadow.drain()
    report = await (await r.client.get("/admin/quality?period=1h")).json()
    assert report["recalibration"]["demoted"] == {"tutor": ["budget"]}
    raise_events = [e for e in report["recalibration"]["events"] if e["action"] == "raise"]
    assert [(e["app"], e["tier"]) for e in raise_events] == [("tutor", "budget")]
    assert raise_events[0]["ci_high"] < report["target"]
    rows = {(row["app"], row["tier"], row["model"]): row for row in report["tiers"]}
    assert rows[("tutor", "budget", "sim-budget")]["shadow"]["rate"] < 0.2
    assert rows[("support", "budget", "sim-budget")]["shadow"]["rate"] == 1.0
    assert rows[("support", "budget", "sim-budget")]["shadow"]["ci_low"] > 0.8
    # The mid tier answers well and is measured too, on the traffic it now serves.
    assert rows[("tutor", "mid", "sim-mid")]["shadow"]["rate"] == 1.0
    spent = report["shadow"]["spent_usd"]
    assert 0 < spent <= float(SHADOW_ENV["FASTROUTE_SHADOW_BUDGET_USD"])
    assert spent == pytest.approx(frontier_spend(r.sim, r.catalogue) + budget_probe_spend(r), rel=0.05)


def budget_probe_spend(r: Rig) -> float:
    """Probes of the demoted budget tier (its answers bought to see whether it recovered)."""
    total = 0.0
    for body in r.sim.stats.bodies:
        if body.get("model") == "sim-budget-1" and "stream" not in body and body.get("max_tokens") == 1024:
            prompt = "\n".join(message_text(m) for m in body["messages"])
            answer = r.quality("sim-budget-1", prompt, "")
            total += r.catalogue.models["sim-budget"].cost(approx_tokens(prompt), approx_tokens(answer))
    return total
