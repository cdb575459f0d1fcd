"""Adapter for Anthropic's Messages API: HTTP calls here, translation in `anthropic_translate`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from fastroute.catalogue import ModelEntry, ProviderConfig
from fastroute.chat_request import ChatRequest
from fastroute.errors import UpstreamError
from fastroute.providers.anthropic_translate import (
    StreamTranslator,
    from_anthropic_response,
    to_anthropic_request,
)
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

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(Provider):
    def __init__(self, config: ProviderConfig, pool: SessionPool, api_key: str | None) -> None:
        super().__init__(config)
        self._pool = pool
        self._url = f"{config.base_url}/v1/messages"
        headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION, **config.headers}
        if api_key:
            headers["x-api-key"] = api_key
        self._headers = headers

    async def _post(self, payload: bytes, timeouts: CallTimeouts) -> UpstreamResponse:
        session = self._pool.session_for(self.config.base_url)
        return await post(session, self._url, payload, self._headers, timeouts, self.name)

    async def complete(self, model: ModelEntry, request: ChatRequest, timeouts: CallTimeouts) -> Completion:
        payload = orjson.dumps(to_anthropic_request(model, request, stream=False))
        resp = await self._post(payload, timeouts)
        data = await read_json(resp, self.name)
        if not isinstance(data, dict) or data.get("type") == "error" or "content" not in data:
            raise malformed(self.name, "not a Messages API answer")
        body = from_anthropic_response(data, model.name)
        u = body["usage"]
        return Completion(body=body, usage=Usage(u["prompt_tokens"], u["completion_tokens"]))

    async def open_stream(self, model: ModelEntry, request: ChatRequest, timeouts: CallTimeouts) -> UpstreamStream:
        payload = orjson.dumps(to_anthropic_request(model, request, stream=True))
        resp = await self._post(payload, timeouts)
        return _AnthropicStream(self.name, resp, StreamTranslator(model.name), request.include_usage)


class _AnthropicStream(UpstreamStream):
    def __init__(
        self, provider: str, resp: UpstreamResponse, translator: StreamTranslator, include_usage: bool
    ) -> None:
        self._provider = provider
        self._resp = resp
        self._tr = translator
        self._include_usage = include_usage
        self.usage = None

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        try:
            async for event, data in self._resp.content.sse_events():
                try:
                    parsed = orjson.loads(data)
                except orjson.JSONDecodeError as e:
                    raise malformed(self._provider, "stream event is not JSON") from e
                if not isinstance(parsed, dict):
                    raise malformed(self._provider, "stream event is not an object")
                try:
                    chunks = self._tr.translate(event, parsed)
                except ValueError as e:
                    raise UpstreamError(
                        f"Upstream '{self._provider}' failed mid-stream: {e}", retryable=True, reason="stream_error"
                    ) from e
                for chunk in chunks:
                    yield StreamChunk(chunk)
                if self._tr.finished:
                    break
        except TRANSPORT_ERRORS as e:
            raise transport_error(self._provider, e) from e
        if not self._tr.finished:
            raise UpstreamError(
                f"Upstream '{self._provider}' ended the stream early.", retryable=True, reason="stream_cut"
            )
        self.usage = Usage(self._tr.prompt_tokens, self._tr.completion_tokens)
        if self._include_usage:
            yield StreamChunk(self._tr.usage_chunk())

    async def aclose(self) -> None:
        if self._tr.finished:
            self._resp.release()
        elif not self._resp.closed:
            self._resp.close()
