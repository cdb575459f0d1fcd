"""The model catalogue: defaults, overlays from config files, and precise validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastroute.catalogue import TIERS, Catalogue
from fastroute.config_file import load_config_file
from fastroute.env_values import SettingsError


def test_default_catalogue_serves_every_tier_with_priced_models() -> None:
    cat = Catalogue.default()
    for tier in TIERS:
        chain = cat.tier_chain(tier)
        assert chain and all(m.tier == tier for m in chain)
    assert all(m.input_cost_per_token > 0 and m.output_cost_per_token > 0 for m in cat.models.values())
    assert cat.frontier_reference().tier == "frontier"


def test_cost_is_tokens_times_price() -> None:
    m = Catalogue.default().models["gpt-4o-mini"]
    assert m.cost(1000, 500) == pytest.approx(1000 * 1.5e-7 + 500 * 6e-7)


def test_yaml_overlay_adds_a_vllm_provider(tmp_path: Path) -> None:
    path = tmp_path / "fastroute.yaml"
    path.write_text(
        """
providers:
  local-vllm: {kind: openai, base_url: "http://127.0.0.1:8000/v1/", api_key_env: VLLM_API_KEY}
models:
  llama-3-8b: {provider: local-vllm, tier: budget, input_cost_per_token: 0, output_cost_per_token: 0}
tiers:
  budget: [llama-3-8b, gpt-4o-mini]
"""
    )
    cat = Catalogue.from_mapping(load_config_file(path), source=str(path), base=Catalogue.default())
    assert cat.providers["local-vllm"].base_url == "http://127.0.0.1:8000/v1"
    assert [m.name for m in cat.tier_chain("budget")] == ["llama-3-8b", "gpt-4o-mini"]
    assert "gpt-4o" in cat.models  # the defaults are kept


def test_toml_config_is_read(tmp_path: Path) -> None:
    path = tmp_path / "fastroute.toml"
    path.write_text(
        '[models.m]\nprovider = "openai"\ntier = "mid"\ninput_cost_per_token = 1e-6\noutput_cost_per_token = 2e-6\n'
    )
    cat = Catalogue.from_mapping(load_config_file(path), source=str(path), base=Catalogue.default())
    assert cat.models["m"].tier == "mid"


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (
            {
                "models": {
                    "x": {"provider": "openai", "tier": "gold", "input_cost_per_token": 0, "output_cost_per_token": 0}
                }
            },
            "models.x.tier",
        ),
        (
            {
                "models": {
                    "x": {"provider": "nope", "tier": "mid", "input_cost_per_token": 0, "output_cost_per_token": 0}
                }
            },
            "models.x: unknown provider",
        ),
        (
            {
                "models": {
                    "x": {"provider": "openai", "tier": "mid", "input_cost_per_token": -1, "output_cost_per_token": 0}
                }
            },
            "models.x.input_cost_per_token",
        ),
        ({"providers": {"p": {"kind": "grpc", "base_url": "http://x"}}}, "providers.p.kind"),
        ({"providers": {"p": {"base_url": "ftp://x"}}}, "providers.p.base_url"),
        ({"tiers": {"budget": ["missing-model"]}}, "tiers.budget: unknown model"),
        ({"tiers": {"platinum": []}}, "tiers.platinum"),
    ],
)
def test_invalid_entries_are_reported_with_their_path(raw: dict, where: str) -> None:
    with pytest.raises(SettingsError, match=where.replace(".", r"\.")):
        Catalogue.from_mapping(raw, source="cfg.yaml", base=Catalogue.default())


def test_unparseable_config_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("models: [unclosed")
    with pytest.raises(SettingsError, match=r"bad\.yaml"):
        load_config_file(path)
