"""Builds one provider object per configured upstream, sharing a session pool."""

from __future__ import annotations

from collections.abc import Mapping

from fastroute.catalogue import Catalogue
from fastroute.providers.anthropic import AnthropicProvider
from fastroute.providers.base import Provider
from fastroute.providers.http import SessionPool
from fastroute.providers.openai_compat import OpenAICompatProvider


def build_providers(catalogue: Catalogue, pool: SessionPool, secrets: Mapping[str, str]) -> dict[str, Provider]:
    """`secrets` maps env-var names to values; each provider's `api_key_env` is looked up there."""
    providers: dict[str, Provider] = {}
    for name, cfg in catalogue.providers.items():
        key = secrets.get(cfg.api_key_env) if cfg.api_key_env else None
        if cfg.kind == "anthropic":
            providers[name] = AnthropicProvider(cfg, pool, key)
        else:
            providers[name] = OpenAICompatProvider(cfg, pool, key)
    return providers
