"""The official `openai` client works against fastroute unchanged: sync and async, plain and streamed."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

pytestmark = pytest.mark.asyncio

MESSAGES: list[Any] = [{"role": "user", "content": "Name three primary colours."}]
HEADERS = ("x-request-id", "x-fastroute-model", "x-fastroute-tier", "x-fastroute-cost-usd", "x-fastroute-overhead-ms")


def _base_url(gateway: Any) -> str:
    return str(gateway.make_url("/v1"))


async def test_sync_client_plain_and_stream(gateway: Any) -> None:
    def run() -> tuple[Any, Any, str]:
        client = openai.OpenAI(base_url=_base_url(gateway), api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
        with client.chat.completions.with_streaming_response.create(
            model="sim-frontier", messages=MESSAGES, stream=True
        ) as streamed:
            text = "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
            return raw, streamed.headers, text

    raw, stream_headers, text = await asyncio.to_thread(run)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.total_tokens > 0
    for h in HEADERS:
        assert raw.headers.get(h), h
        assert stream_headers.get(h), h
    assert text.startswith("[sim-frontier-1]")


async def test_async_client_plain_and_stream(gateway: Any) -> None:
    client = openai.AsyncOpenAI(base_url=_base_url(gateway), api_key="unused", max_retries=0)
    completion = await client.chat.completions.create(model="sim-mid", messages=MESSAGES)
    assert completion.model == "sim-mid-1"
    stream = await client.chat.completions.create(
        model="auto", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    pieces, usage = [], None
    async for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            usage = chunk.usage
    assert "".join(pieces)
    assert usage is not None and usage.completion_tokens > 0
    models = await client.models.list()
    assert "auto" in {m.id for m in models.data}
    await client.close()


async def test_client_sees_errors_as_exceptions(gateway: Any, upstream: Any) -> None:
    from fastroute.simulator.upstream import Fault

    client = openai.AsyncOpenAI(base_url=_base_url(gateway), api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as nf:
        await client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="auto", messages=[])
    upstream[1].add(Fault("cut", after_chunks=3))
    stream = await client.chat.completions.create(model="sim-budget", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    await client.close()
