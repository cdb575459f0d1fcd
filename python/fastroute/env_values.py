"""Typed readers for `FASTROUTE_*` values: each fails with the variable's name in the message.

Pure: reads only the mapping it is given, never `os.environ`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class SettingsError(ValueError):
    """A `FASTROUTE_*` variable (or config entry) is invalid; the message names it."""


Env = Mapping[str, str]


def env_str(env: Env, name: str, default: str) -> str:
    value = env.get(name)
    return default if value is None or value == "" else value


def env_opt_str(env: Env, name: str) -> str | None:
    value = env.get(name)
    return None if value is None or value == "" else value


def env_int(env: Env, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    _check_range(name, value, minimum, maximum)
    return value


def env_float(
    env: Env, name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value != value:  # NaN
        raise SettingsError(f"{name}={raw!r} is not a number")
    _check_range(name, value, minimum, maximum)
    return value


def env_opt_float(env: Env, name: str, *, minimum: float | None = None, maximum: float | None = None) -> float | None:
    if env.get(name) in (None, ""):
        return None
    return env_float(env, name, 0.0, minimum=minimum, maximum=maximum)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(env: Env, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true/false)")


def env_choice(env: Env, name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(env, name, default).strip().lower()
    if value not in choices:
        raise SettingsError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def env_path(env: Env, name: str, default: Path | None) -> Path | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return Path(raw).expanduser()


def _check_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name}={value} is above the maximum {maximum}")
