"""Upstream providers: one adapter per genuinely different API, configured by data (`ProviderConfig`)."""

from fastroute.providers.base import Completion, Provider, StreamChunk, UpstreamStream, Usage
from fastroute.providers.registry import build_providers

__all__ = ["Completion", "Provider", "StreamChunk", "UpstreamStream", "Usage", "build_providers"]
