"""The provider interface: turn a validated OpenAI request into an OpenAI-shaped answer or chunk stream.

Pure types and the abstract base; adapters live beside it. Adapters raise `UpstreamError` subclasses.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastroute.catalogue import ModelEntry, ProviderConfig
from fastroute.chat_request import ChatRequest


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class Completion:
    """A whole (non-streamed) answer in OpenAI `chat.completion` shape."""

    body: dict[str, Any]
    usage: Usage | None


@dataclass(slots=True)
class StreamChunk:
    """One OpenAI `chat.completion.chunk`: its dict and, where the upstream sent it as-is, its SSE bytes."""

    data: dict[str, Any]
    raw: bytes | None = None


class UpstreamStream(abc.ABC):
    """An opened upstream stream. Iterate for chunks; `usage` is filled when the upstream reports it."""

    usage: Usage | None = None

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[StreamChunk]: ...

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Releases the upstream connection; an unfinished stream is cut so the upstream stops work."""

    def buffered(self) -> bool:
        """True when the next chunk (or the end) has already arrived, so reading it will not wait on the
        network. The relay then sends chunks that arrived together in one write; False (the default)
        means every chunk is written as soon as it is read."""
        return False


@dataclass(frozen=True, slots=True)
class CallTimeouts:
    connect_s: float
    first_token_s: float
    total_s: float


class Provider(abc.ABC):
    """One upstream API. Concrete adapters: `OpenAICompatProvider`, `AnthropicProvider`."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    @abc.abstractmethod
    async def complete(self, model: ModelEntry, request: ChatRequest, timeouts: CallTimeouts) -> Completion: ...

    @abc.abstractmethod
    async def open_stream(self, model: ModelEntry, request: ChatRequest, timeouts: CallTimeouts) -> UpstreamStream:
        """Sends the request and waits for the upstream's status; errors before the first byte raise."""
