"""Adapter for any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, ...): configured by data only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from fastroute.catalogue import ModelEntry, ProviderConfig
from fastroute.chat_request import ChatRequest
from fastroute.errors import UpstreamError
from fastroute.providers.base import CallTimeouts, Completion, Provider, StreamChunk, UpstreamStream, Usage
from fastroute.providers.http import (
    TRANSPORT_ERRORS,
    SessionPool,
    malformed,
    post,
    read_json,
    transport_error,
)
from fastroute.providers.wire_response import UpstreamResponse


def usage_from(data: Mapping[str, Any]) -> Usage | None:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(p, int) and isinstance(c, int):
        return Usage(p, c)
    return None


class OpenAICompatProvider(Provider):
    def __init__(self, config: ProviderConfig, pool: SessionPool, api_key: str | None) -> None:
        super().__init__(config)
        self._pool = pool
        self._url = f"{config.base_url}/chat/completions"
        headers = {"Content-Type": "application/json", **config.headers}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = headers

    def _payload(self, model: ModelEntry, request: ChatRequest, stream: bool) -> bytes:
        body = dict(request.body)
        body["model"] = model.upstream_model
        if stream:
            body["stream"] = True
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return orjson.dumps(body)

    async def _post(self, payload: bytes, timeouts: CallTimeouts) -> UpstreamResponse:
        session = self._pool.session_for(self.config.base_url)
        return await post(session, self._url, payload, self._headers, timeouts, self.name)

    async def complete(self, model: ModelEntry, request: ChatRequest, timeouts: CallTimeouts) -> Completion:
        resp = await self._post(self._payload(model, request, stream=False), timeouts)
        data = await read_json(resp, self.name)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise malformed(self.name, "no 'choices' list")
        return Completion(body=data, usage=usage_from(data))

    async def open_stream(self, model: ModelEntry, request: ChatRequest, timeouts: CallTimeouts) -> UpstreamStream:
        resp = await self._post(self._payload(model, request, stream=True), timeouts)
        return _OpenAIStream(self.name, resp)


class _OpenAIStream(UpstreamStream):
    def __init__(self, provider: str, resp: UpstreamResponse) -> None:
        self._provider = provider
        self._resp = resp
        self._finished = False
        self.usage = None

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        done = False
        content = self._resp.content
        try:
            while True:  # the body's events read directly (one async generator less per chunk)
                event = content.next_event()
                if event is None:
                    if content.ended:
                        break
                    await content.wait()
                    continue
                data = event[1]
                if data == b"[DONE]":
                    done = self._finished = True
                    break
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError as e:
                    raise malformed(self._provider, "stream chunk is not JSON") from e
                if not isinstance(chunk, dict):
                    raise malformed(self._provider, "stream chunk is not an object")
                if "error" in chunk:
                    err = chunk["error"]
                    msg = err.get("message") if isinstance(err, dict) else str(err)
                    raise UpstreamError(
                        f"Upstream '{self._provider}' failed mid-stream: {msg}", retryable=True, reason="stream_error"
                    )
                usage = usage_from(chunk)
                if usage is not None:
                    self.usage = usage
                yield StreamChunk(chunk, b"data: " + data + b"\n\n")
        except TRANSPORT_ERRORS as e:
            raise transport_error(self._provider, e) from e
        if not done:
            raise UpstreamError(
                f"Upstream '{self._provider}' ended the stream early.", retryable=True, reason="stream_cut"
            )

    def buffered(self) -> bool:
        return self._finished or self._resp.content.has_event()

    async def aclose(self) -> None:
        # A finished stream returns its connection to the pool; an unfinished one is cut so the
        # upstream notices and stops generating.
        if self._finished:
            self._resp.release()
        elif not self._resp.closed:
            self._resp.close()
