"""The model catalogue: providers (upstreams), models with tier and per-token USD prices, tier chains.

Pure: must not import aiohttp. Loaded from the packaged default, overridden by the config file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastroute.env_values import SettingsError

TIERS: tuple[str, ...] = ("budget", "mid", "frontier")
PROVIDER_KINDS: tuple[str, ...] = ("openai", "anthropic")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One upstream: an OpenAI-compatible server or Anthropic's Messages API."""

    name: str
    kind: str
    base_url: str
    api_key_env: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    region: str = "unknown"
    retention: str = "unknown"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model clients may name, and how it is reached and priced."""

    name: str
    provider: str
    upstream_model: str
    tier: str
    input_cost_per_token: float
    output_cost_per_token: float
    max_input_tokens: int = 128_000
    max_output_tokens: int = 4_096
    encoding: str = "cl100k_base"
    # Per-deployment upstream timeouts in seconds; None = the global FASTROUTE_UPSTREAM_*_TIMEOUT_S.
    connect_timeout_s: float | None = None
    first_token_timeout_s: float | None = None
    total_timeout_s: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_cost_per_token + completion_tokens * self.output_cost_per_token


@dataclass(frozen=True, slots=True)
class Catalogue:
    providers: Mapping[str, ProviderConfig]
    models: Mapping[str, ModelEntry]
    tiers: Mapping[str, tuple[str, ...]]
    # Derived once (the catalogue is immutable); read several times per request.
    _chains: dict[str, tuple[ModelEntry, ...]] = field(init=False, repr=False, compare=False)
    _reference: ModelEntry | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # unknown names are the loader's to report (with their path), not a KeyError here
        chains = {tier: tuple(self.models[n] for n in names if n in self.models) for tier, names in self.tiers.items()}
        object.__setattr__(self, "_chains", chains)
        frontier = chains.get("frontier")
        reference = frontier[0] if frontier else max(self.models.values(), key=lambda m: m.output_cost_per_token,
                                                      default=None)  # fmt: skip
        object.__setattr__(self, "_reference", reference)

    def model(self, name: str) -> ModelEntry | None:
        return self.models.get(name)

    def tier_chain(self, tier: str) -> tuple[ModelEntry, ...]:
        """The ordered deployments serving a tier (first is preferred, the rest are fallbacks)."""
        return self._chains.get(tier, ())

    def frontier_reference(self) -> ModelEntry:
        """The model whose price is the counterfactual 'always frontier' cost."""
        if self._reference is None:
            raise ValueError("the catalogue has no models")
        return self._reference

    @classmethod
    def default(cls) -> Catalogue:
        raw = json.loads(resources.files("fastroute.data").joinpath("catalogue.json").read_text())
        return cls.from_mapping(raw, source="default catalogue")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, source: str, base: Catalogue | None = None) -> Catalogue:
        """Builds (or overlays onto `base`) a catalogue; errors name `source` and the entry."""
        providers: dict[str, ProviderConfig] = dict(base.providers) if base else {}
        models: dict[str, ModelEntry] = dict(base.models) if base else {}
        tiers: dict[str, tuple[str, ...]] = dict(base.tiers) if base else {}
        for name, spec in _section(raw, "providers", source).items():
            providers[name] = _provider(name, spec, f"{source}: providers.{name}")
        for name, spec in _section(raw, "models", source).items():
            models[name] = _model(name, spec, f"{source}: models.{name}")
        for tier, names in _section(raw, "tiers", source).items():
            where = f"{source}: tiers.{tier}"
            if tier not in TIERS:
                raise SettingsError(f"{where}: unknown tier (use one of {', '.join(TIERS)})")
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise SettingsError(f"{where}: must be a list of model names")
            tiers[tier] = tuple(names)
        catalogue = cls(providers=providers, models=models, tiers=tiers)
        catalogue._check(source)
        return catalogue

    def _check(self, source: str) -> None:
        for m in self.models.values():
            if m.provider not in self.providers:
                raise SettingsError(f"{source}: models.{m.name}: unknown provider {m.provider!r}")
        for tier, names in self.tiers.items():
            for n in names:
                if n not in self.models:
                    raise SettingsError(f"{source}: tiers.{tier}: unknown model {n!r}")
        for tier in TIERS:
            if not self.tiers.get(tier):
                raise SettingsError(f"{source}: tiers.{tier}: no model serves this tier")


def _section(raw: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise SettingsError(f"{source}: {key} must be a mapping")
    return value


def _provider(name: str, spec: Any, where: str) -> ProviderConfig:
    if not isinstance(spec, Mapping):
        raise SettingsError(f"{where}: must be a mapping")
    kind = spec.get("kind", "openai")
    if kind not in PROVIDER_KINDS:
        raise SettingsError(f"{where}.kind: {kind!r} is not one of {', '.join(PROVIDER_KINDS)}")
    base_url = spec.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise SettingsError(f"{where}.base_url: must be an http(s) URL")
    headers = spec.get("headers", {})
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise SettingsError(f"{where}.headers: must map header names to strings")
    return ProviderConfig(
        name=name,
        kind=kind,
        base_url=base_url.rstrip("/"),
        api_key_env=_opt_str(spec, "api_key_env", where),
        headers=dict(headers),
        region=str(spec.get("region", "unknown")),
        retention=str(spec.get("retention", "unknown")),
    )


def _model(name: str, spec: Any, where: str) -> ModelEntry:
    if not isinstance(spec, Mapping):
        raise SettingsError(f"{where}: must be a mapping")
    tier = spec.get("tier")
    if tier not in TIERS:
        raise SettingsError(f"{where}.tier: {tier!r} is not one of {', '.join(TIERS)}")
    provider = spec.get("provider")
    if not isinstance(provider, str):
        raise SettingsError(f"{where}.provider: required")
    return ModelEntry(
        name=name,
        provider=provider,
        upstream_model=str(spec.get("upstream_model", name)),
        tier=tier,
        input_cost_per_token=_price(spec, "input_cost_per_token", where),
        output_cost_per_token=_price(spec, "output_cost_per_token", where),
        max_input_tokens=_pos_int(spec, "max_input_tokens", 128_000, where),
        max_output_tokens=_pos_int(spec, "max_output_tokens", 4_096, where),
        encoding=str(spec.get("encoding", "cl100k_base")),
        connect_timeout_s=_opt_seconds(spec, "connect_timeout_s", where),
        first_token_timeout_s=_opt_seconds(spec, "first_token_timeout_s", where),
        total_timeout_s=_opt_seconds(spec, "total_timeout_s", where),
    )


def _price(spec: Mapping[str, Any], key: str, where: str) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SettingsError(f"{where}.{key}: must be a non-negative number (USD per token)")
    return float(value)


def _pos_int(spec: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SettingsError(f"{where}.{key}: must be a positive integer")
    return value


def _opt_seconds(spec: Mapping[str, Any], key: str, where: str) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SettingsError(f"{where}.{key}: must be a positive number of seconds")
    return float(value)


def _opt_str(spec: Mapping[str, Any], key: str, where: str) -> str | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SettingsError(f"{where}.{key}: must be a string")
    return value
