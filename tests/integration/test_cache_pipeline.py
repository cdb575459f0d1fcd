"""The response cache in the pipeline: exact and semantic hits, tenants, cache-control, streamed replay."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.conftest import chat_body

pytestmark = pytest.mark.asyncio


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, "FASTROUTE_CACHE_ENABLED": "true"}


async def _ask(gateway: Any, content: str, app: str = "app-a", **extra: Any) -> Any:
    headers = {"x-fastroute-app": app, **extra.pop("headers", {})}
    body = chat_body(content, model="sim-mid", **{"temperature": 0, **extra})
    return await gateway.post("/v1/chat/completions", json=body, headers=headers)


async def test_repeat_is_an_exact_hit_that_costs_nothing(gateway: Any, upstream: Any) -> None:
    sim = upstream[0]
    first = await _ask(gateway, "What is the boiling point of water at sea level?")
    assert first.headers["x-fastroute-cache"] == "miss"
    calls = sim.stats.requests
    again = await _ask(gateway, "  what is the BOILING point of water at sea level  ")
    assert again.headers["x-fastroute-cache"] == "hit-exact"
    assert float(again.headers["x-fastroute-cost-usd"]) == 0.0
    assert sim.stats.requests == calls  # the upstream was not asked
    assert (await again.json())["choices"] == (await first.json())["choices"]


async def test_paraphrase_is_a_semantic_hit_but_a_changed_number_is_not(gateway: Any, upstream: Any) -> None:
    await _ask(gateway, "How do I reset my password on the website?")
    para = await _ask(gateway, "How can I reset my password on the website?")
    assert para.headers["x-fastroute-cache"] == "hit-semantic"
    await _ask(gateway, "What is 17 times 23?")
    changed = await _ask(gateway, "What is 17 times 24?")
    assert changed.headers["x-fastroute-cache"] == "miss"


async def test_tenant_a_never_gets_tenant_b_entries(gateway: Any) -> None:
    await _ask(gateway, "Summarise our refund policy.", app="app-a")
    other = await _ask(gateway, "Summarise our refund policy.", app="app-b")
    assert other.headers["x-fastroute-cache"] == "miss"
    same = await _ask(gateway, "Summarise our refund policy.", app="app-a")
    assert same.headers["x-fastroute-cache"] == "hit-exact"


async def test_cache_control_no_cache_and_no_store(gateway: Any, upstream: Any) -> None:
    sim = upstream[0]
    await _ask(gateway, "Name the largest ocean.")
    calls = sim.stats.requests
    fresh = await _ask(gateway, "Name the largest ocean.", headers={"cache-control": "no-cache"})
    assert fresh.headers["x-fastroute-cache"] == "bypass"
    assert sim.stats.requests == calls + 1
    unstored = await _ask(gateway, "Name the smallest ocean.", headers={"cache-control": "no-store"})
    assert unstored.headers["x-fastroute-cache"] == "bypass"
    after = await _ask(gateway, "Name the smallest ocean.")
    assert after.headers["x-fastroute-cache"] == "miss"


async def test_sampling_temperature_skips_the_semantic_level_only(gateway: Any) -> None:
    await _ask(gateway, "How do I reset my password on the website?", temperature=0.8)
    para = await _ask(gateway, "How can I reset my password on the website?", temperature=0.8)
    assert para.headers["x-fastroute-cache"] == "miss"
    exact = await _ask(gateway, "How do I reset my password on the website?", temperature=0.8)
    assert exact.headers["x-fastroute-cache"] == "hit-exact"


async def test_streamed_answer_is_stored_and_a_streamed_hit_replays_with_the_openai_client(gateway: Any) -> None:
    client = openai.AsyncOpenAI(base_url=str(gateway.make_url("/v1")), api_key="x", max_retries=0)
    messages: Any = [{"role": "user", "content": "List the planets of the solar system."}]
    kwargs: Any = {"model": "sim-mid", "messages": messages, "temperature": 0, "stream": True,
                   "extra_headers": {"x-fastroute-app": "app-a"}}
    live = await client.chat.completions.with_raw_response.create(**kwargs)
    assert live.headers["x-fastroute-cache"] == "miss"
    live_text = "".join([c.choices[0].delta.content or "" async for c in live.parse() if c.choices])
    replay = await client.chat.completions.with_raw_response.create(**kwargs)
    assert replay.headers["x-fastroute-cache"] == "hit-exact"
    replay_text = "".join([c.choices[0].delta.content or "" async for c in replay.parse() if c.choices])
    assert replay_text == live_text and live_text
    plain = await client.chat.completions.create(**{**kwargs, "stream": False})
    assert plain.choices[0].message.content == live_text
    await client.close()


async def test_cache_off_by_setting(make_gateway: Any) -> None:
    gateway = await make_gateway(FASTROUTE_CACHE_ENABLED="false")
    await _ask(gateway, "Name the largest ocean.")
    again = await _ask(gateway, "Name the largest ocean.")
    assert again.headers["x-fastroute-cache"] == "off"


async def test_metrics_report_the_cache_size(gateway: Any) -> None:
    from tests.integration.test_metrics import scrape, total

    before = await scrape(gateway)
    assert total(before, "fastroute_cache_entries") == 0
    for i in range(3):
        assert (await _ask(gateway, f"Name three rivers of country number {i}.")).headers["x-fastroute-cache"] == "miss"
    await _ask(gateway, "Name three rivers of country number 0.")  # a hit stores nothing new
    after = await scrape(gateway)
    assert total(after, "fastroute_cache_entries") == 3
    assert total(after, "fastroute_cache_bytes", where="log") > 3 * 100  # three answers in the body log
    assert total(after, "fastroute_cache_bytes", where="memory") > 0
