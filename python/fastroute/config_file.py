"""Reads the optional config file (`FASTROUTE_CONFIG`, YAML or TOML) into a plain mapping.

Owns file parsing only; what the sections mean is the catalogue's (and later the policy's) business.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from fastroute.env_values import SettingsError


def load_config_file(path: Path) -> dict[str, Any]:
    """Parses `path` by its suffix (.toml, else YAML); errors name the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SettingsError(f"{path}: cannot read config file: {e.strerror}") from e
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise SettingsError(f"{path}: invalid {'TOML' if path.suffix == '.toml' else 'YAML'}: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: the top level must be a mapping")
    return data
