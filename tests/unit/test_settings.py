"""Settings: built once from a mapping, validated, failing with the variable's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastroute.settings import Settings, SettingsError


def test_defaults_from_empty_env() -> None:
    s = Settings.from_env({})
    assert s.server.port == 8080
    assert s.server.max_body_bytes == 4 * 1024 * 1024
    assert s.redis_url is None
    assert s.router.quality_target is None


def test_values_are_parsed() -> None:
    s = Settings.from_env(
        {"FASTROUTE_PORT": "9000", "FASTROUTE_MAX_BODY_BYTES": "2048", "FASTROUTE_ACCESS_LOG": "yes",
         "FASTROUTE_QUALITY_TARGET": "0.95", "FASTROUTE_UPSTREAM_TOTAL_TIMEOUT_S": "12.5"}
    )
    assert (s.server.port, s.server.max_body_bytes, s.server.access_log) == (9000, 2048, True)
    assert s.router.quality_target == 0.95
    assert s.upstream.total_timeout_s == 12.5


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"FASTROUTE_PORT": "eighty"}, "FASTROUTE_PORT"),
        ({"FASTROUTE_PORT": "70000"}, "FASTROUTE_PORT"),
        ({"FASTROUTE_MAX_BODY_BYTES": "10"}, "FASTROUTE_MAX_BODY_BYTES"),
        ({"FASTROUTE_ACCESS_LOG": "maybe"}, "FASTROUTE_ACCESS_LOG"),
        ({"FASTROUTE_LOG_LEVEL": "loud"}, "FASTROUTE_LOG_LEVEL"),
        ({"FASTROUTE_QUALITY_TARGET": "nan"}, "FASTROUTE_QUALITY_TARGET"),
        ({"FASTROUTE_QUALITY_TARGET": "1.5"}, "FASTROUTE_QUALITY_TARGET"),
        ({"FASTROUTE_QUALITY_TARGET": "0.9", "FASTROUTE_FRONTIER_SHARE": "0.2"}, "FASTROUTE_FRONTIER_SHARE"),
        ({"FASTROUTE_CONFIG": "/nonexistent/fastroute.yaml"}, "FASTROUTE_CONFIG"),
    ],
)
def test_bad_values_fail_naming_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_secrets_are_not_in_repr(tmp_path: Path) -> None:
    s = Settings.from_env({"FASTROUTE_ADMIN_TOKEN": "hunter2", "FASTROUTE_REDIS_URL": "redis://:pw@host/0"})
    assert "hunter2" not in repr(s) and "pw@host" not in repr(s)


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.server.port = 1  # type: ignore[misc]
