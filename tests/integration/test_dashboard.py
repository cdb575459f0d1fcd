"""`/admin/stats` and `/dashboard`: in-process checks, then end to end with `fastroute demo` and Chromium.

The end-to-end test reads the rendered DOM from headless Chromium and checks that every number the page
shows (elements with `data-stat`) equals `/admin/stats`; it saves a screenshot under `artifacts/`
(and refreshes docs/dashboard.png when FASTROUTE_UPDATE_SCREENSHOT=1).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest

from fastroute.simulator.upstream import Fault
from tests.conftest import chat_body

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


# ---------------------------------------------------------------- in-process: /admin/stats and the page


async def test_stats_totals_match_what_was_answered(gateway: Any, upstream: Any, catalogue: Any) -> None:
    _, plan, _ = upstream
    spend = cf = 0.0
    tiers = {"budget": 0, "mid": 0, "frontier": 0}
    ref = catalogue.frontier_reference()
    for i, model in enumerate(["sim-budget", "sim-budget", "sim-mid", "sim-frontier", "sim-budget"]):
        resp = await gateway.post("/v1/chat/completions", json=chat_body(f"q{i}", model=model))
        usage = (await resp.json())["usage"]
        spend += catalogue.models[model].cost(usage["prompt_tokens"], usage["completion_tokens"])
        cf += ref.cost(usage["prompt_tokens"], usage["completion_tokens"])
        tiers[catalogue.models[model].tier] += 1
    plan.add(Fault("status", status=500), times=2)
    failed = await gateway.post("/v1/chat/completions", json=chat_body("boom", model="sim-frontier"))
    assert failed.status == 502

    resp = await gateway.get("/admin/stats", params={"period": "1h"})
    assert resp.status == 200
    stats = await resp.json()
    t = stats["totals"]
    assert (t["requests"], t["served"], t["errors"]) == (6, 5, 1)
    assert t["spend_usd"] == round(spend, 6)
    assert t["counterfactual_usd"] == round(cf, 6)
    assert t["savings_pct"] == round(100 * (cf - spend) / cf, 1)
    assert {k: v["requests"] for k, v in stats["tier_mix"].items()} == {**tiers, "cache": 0}
    assert [d["department"] for d in stats["by_department"]] == ["default"]
    assert stats["by_department"][0]["requests"] == 6
    assert stats["latency"]["window"] == 5
    assert 0 < stats["latency"]["overhead_p50_ms"] <= stats["latency"]["p50_ms"]
    frontier = {u["deployment"]: u for u in stats["upstreams"]}
    assert frontier["sim-frontier"]["errors"] == 1 and frontier["sim-frontier-openai"]["errors"] == 1
    assert frontier["sim-frontier"]["last_error"] == "http_500"
    assert frontier["sim-budget"]["status"] == "healthy"
    assert sum(p["budget"] + p["mid"] + p["frontier"] for p in stats["series"]["points"]) == 5
    assert sum(p["errors"] for p in stats["series"]["points"]) == 1
    for period in ("24h", "7d", "30d", "all"):
        other = await (await gateway.get("/admin/stats", params={"period": period})).json()
        assert other["totals"] == t
        assert sum(p["budget"] + p["mid"] + p["frontier"] for p in other["series"]["points"]) == 5
    nobody = await (await gateway.get("/admin/stats", params={"department": "nobody"})).json()
    assert nobody["totals"]["requests"] == 0 and nobody["by_department"] == []


async def test_stats_refuses_an_unknown_period(gateway: Any) -> None:
    resp = await gateway.get("/admin/stats", params={"period": "fortnight"})
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "period"


async def test_admin_token_guards_stats_and_dashboard_not_assets(make_gateway: Any) -> None:
    gateway = await make_gateway(FASTROUTE_ADMIN_TOKEN="t0ken")
    for path in ("/admin/stats", "/dashboard"):
        assert (await gateway.get(path)).status == 401
        assert (await gateway.get(path, params={"token": "nope"})).status == 401
        assert (await gateway.get(path, params={"token": "t0ken"})).status == 200
        assert (await gateway.get(path, headers={"Authorization": "Bearer t0ken"})).status == 200
    for asset in ("dashboard.js", "dashboard.css"):
        assert (await gateway.get(f"/dashboard/{asset}")).status == 200
    assert (await gateway.get("/dashboard/secrets.txt")).status == 404


async def test_dashboard_page_is_self_contained(gateway: Any) -> None:
    resp = await gateway.get("/dashboard")
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    js = await (await gateway.get("/dashboard/dashboard.js")).text()
    for text in (html, js):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text
    assert "/admin/stats" in js and 'data-stat="totals.savings_pct"' in html


# ---------------------------------------------------------------- end to end: demo + Chromium


class _StatElements(HTMLParser):
    """Collects (data-stat, data-value, text) of every element carrying `data-stat`."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []
        self.body: dict[str, str] = {}
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        if "data-stat" in a:
            self._open.append([a["data-stat"], a.get("data-value", ""), ""])

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._open:
            path, value, text = self._open.pop()
            self.found.append((path, value, text.strip()))


def _resolve(stats: Any, path: str) -> Any:
    for part in path.split("."):
        stats = stats[int(part)] if isinstance(stats, list) else stats[part]
    return stats


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEMO_POLICY = """
departments:
  support:
    budgets: {daily_usd: 0.25, monthly_usd: 3.0}
  engineering:
    budgets: {daily_usd: 0.3}
  legal: {}
applications:
  helpdesk-bot: {department: support, pii: redact}
  faq-search: {department: support}
  code-review: {department: engineering}
  contract-check: {department: legal, pii: block}
"""

# (application, prompt): an everyday mix, mostly short support questions, some engineering and legal work
TRAFFIC = [
    ("faq-search", "What is the capital of France?"),
    ("helpdesk-bot", "My order has not arrived, please write to me at jane.doe@example.com"),
    ("code-review", "Review this Python function for bugs and suggest unit tests: "
     "def median(xs): xs.sort(); return xs[len(xs)//2]"),
    ("faq-search", "Give me three names for a cat."),
    ("helpdesk-bot", "Write a polite reply to a customer asking where their parcel is."),
    ("contract-check", "Extract the invoice number and total from: Invoice INV-20931, total due EUR 1,240.00."),
    ("helpdesk-bot", "Classify the sentiment of this review: 'The delivery was late but the product is great.'"),
    ("code-review", "Design a distributed rate limiter on Redis; discuss failure modes and clock skew. " * 8),
    ("faq-search", "Summarise in two sentences: revenue grew 12% while costs fell 3%, driven by subscriptions."),
    ("contract-check", "Review this contract clause by clause and flag every risk: "
     + "The supplier shall indemnify the customer. " * 220),
]


def _drive(port: int, waves: int) -> tuple[int, int]:
    """Realistic traffic through the openai client; returns (requests that reached the pipeline, errors)."""
    from openai import OpenAI

    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="demo", max_retries=0, timeout=60)

    def one(i: int) -> None:
        app, prompt = TRAFFIC[i % len(TRAFFIC)]
        messages: Any = [{"role": "user", "content": f"{prompt} (#{i})"}]
        headers = {"x-fastroute-app": app}
        # max_tokens bounds what budgets reserve for a request in flight (its worst-case cost)
        if i % 3 == 1:
            for _ in client.chat.completions.create(model="auto", messages=messages, stream=True,
                                                    max_tokens=400, extra_headers=headers):
                pass
        else:
            client.chat.completions.create(model="auto", messages=messages, max_tokens=400, extra_headers=headers)

    sent = 0
    for wave in range(waves):
        if wave:
            time.sleep(15)
        n = 20 + 4 * (wave % 3)
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(one, range(sent, sent + n)))
        sent += n
    # refusals inside the pipeline show as errors and policy decisions: PII under `block`, an unknown model
    with pytest.raises(Exception, match="kind email"):
        client.chat.completions.create(model="auto", extra_headers={"x-fastroute-app": "contract-check"},
                                       messages=[{"role": "user", "content": "Counterparty: jane.doe@example.com"}])
    with pytest.raises(Exception, match="not"):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}],
                                       extra_headers={"x-fastroute-app": "code-review"})
    return sent + 2, 2


def _chromium(*args: str, timeout: float = 90) -> str:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--window-size=1400,1420", "--virtual-time-budget=5000", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_dashboard_end_to_end_in_chromium(tmp_path: Path) -> None:
    port, token = _free_port(), "e2e-admin-token"
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEMO_POLICY)
    env = {**os.environ, "FASTROUTE_DATA_DIR": str(tmp_path / "data"), "FASTROUTE_ADMIN_TOKEN": token,
           "FASTROUTE_POLICY": str(policy), "FASTROUTE_REQUEST_LOG": "off", "FASTROUTE_LOG_LEVEL": "warning",
           "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen([sys.executable, "-m", "fastroute", "demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if "demo is running" in line or not line:
                break
        assert demo.poll() is None, "fastroute demo exited early"
        sent, errors = _drive(port, int(os.environ.get("FASTROUTE_DASHBOARD_WAVES", "1")))

        url = f"http://127.0.0.1:{port}/dashboard?period=15m&token={token}"
        dom = _chromium("--dump-dom", url)
        import urllib.request

        req = urllib.request.Request(f"http://127.0.0.1:{port}/admin/stats?period=15m",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            stats = orjson.loads(resp.read())

        page = _StatElements()
        page.feed(dom)
        assert page.body.get("data-ready") == "true", "the dashboard never rendered /admin/stats"
        assert page.body.get("data-period") == "15m"
        assert stats["totals"]["requests"] == sent
        assert stats["totals"]["errors"] == errors
        assert [d["department"] for d in stats["by_department"]] == ["engineering", "legal", "support"]
        assert {b["name"] for b in stats["budgets"]} == {"support", "engineering"}
        assert stats["decisions"]["blocked"] >= 1 and stats["decisions"]["redacted"] >= 1
        paths = {p for p, _, _ in page.found}
        for must in ("totals.spend_usd", "totals.counterfactual_usd", "totals.savings_pct",
                     "totals.cache_hit_rate_pct", "latency.p50_ms", "latency.p99_ms", "latency.overhead_p50_ms",
                     "latency.overhead_p99_ms", "tier_mix.budget.share_pct", "by_department.0.spend_usd",
                     "upstreams.0.status", "decisions.blocked", "by_department.2.budgets.0.used_pct",
                     "decisions.recent.0.app"):
            assert must in paths, f"the dashboard does not show {must}"
        for path, value, text in page.found:
            expected = _resolve(stats, path)
            if isinstance(expected, (int, float)) and not isinstance(expected, bool):
                assert float(value) == expected, path
                shown = text.replace("$", "").replace("%", "").replace(",", "")
                assert float(shown) == expected, f"{path}: page shows {text!r}, stats say {expected}"
            elif expected is None:
                assert value == "" and text == "\u2013", path  # an en dash
            else:
                assert value == str(expected) and text == str(expected), path

        artifacts = REPO / "artifacts"
        artifacts.mkdir(exist_ok=True)
        shot = artifacts / "dashboard.png"
        _chromium(f"--screenshot={shot}", url)
        assert shot.stat().st_size > 20_000
        if os.environ.get("FASTROUTE_UPDATE_SCREENSHOT") == "1":
            (REPO / "docs").mkdir(exist_ok=True)
            shutil.copyfile(shot, REPO / "docs" / "dashboard.png")
    finally:
        demo.terminate()
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()


async def test_budgets_from_governance_show_in_stats_and_metrics(make_gateway: Any, catalogue: Any) -> None:
    from fastroute.observability import BudgetStatus, ObservabilitySettings, ObservabilityStage

    levels = {"spent": 0.0}

    async def budgets() -> list[BudgetStatus]:
        return [BudgetStatus("department", "default", "day", 5.0, levels["spent"]),
                BudgetStatus("app", "default", "month", 100.0, 25.0)]

    obs = ObservabilityStage(ObservabilitySettings(request_log="off"), catalogue, budgets=budgets)
    gateway = await make_gateway(stages=[obs])
    levels["spent"] = 4.5
    await (await gateway.post("/v1/chat/completions", json=chat_body(model="sim-budget"))).read()
    stats = await (await gateway.get("/admin/stats")).json()
    (dept_budget,) = stats["by_department"][0]["budgets"]
    assert dept_budget == {"scope": "department", "name": "default", "period": "day", "limit_usd": 5.0,
                           "spent_usd": 4.5, "remaining_usd": 0.5, "used_pct": 90.0}
    assert stats["by_app"][0]["budgets"][0]["used_pct"] == 25.0
    text = await (await gateway.get("/metrics")).text()
    assert 'fastroute_budget_remaining_usd{name="default",period="day",scope="department"} 0.5' in text
    assert 'fastroute_budget_limit_usd{name="default",period="month",scope="app"} 100.0' in text
