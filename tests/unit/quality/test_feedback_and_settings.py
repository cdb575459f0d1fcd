"""Feedback bodies and the quality settings: every accepted and refused shape."""

from __future__ import annotations

from typing import Any

import pytest

from fastroute.env_values import SettingsError
from fastroute.errors import InvalidRequest
from fastroute.quality.feedback import MAX_COMMENT_CHARS, parse_feedback
from fastroute.quality.settings import QualitySettings


@pytest.mark.parametrize(
    ("score", "expected"), [(0, 0.0), (1, 1.0), (0.25, 0.25), ("up", 1.0), ("DOWN", 0.0), (" thumbs_up ", 1.0)]
)
def test_scores(score: Any, expected: float) -> None:
    fb = parse_feedback({"request_id": "abc-1", "score": score})
    assert fb.score == expected and fb.positive == (expected >= 0.5)


def test_thumbs_field_and_comment_kept_out_of_repr() -> None:
    fb = parse_feedback({"request_id": "abc", "thumbs": "down", "comment": "my card is 4111 1111 1111 1111"})
    assert fb.score == 0.0 and fb.comment is not None
    assert "4111" not in repr(fb)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"score": 1}, "request_id"),
        ({"request_id": "", "score": 1}, "request_id"),
        ({"request_id": "has space", "score": 1}, "request_id"),
        ({"request_id": "x" * 129, "score": 1}, "request_id"),
        ({"request_id": 7, "score": 1}, "request_id"),
        ({"request_id": "a"}, "score"),
        ({"request_id": "a", "score": 1.5}, "score"),
        ({"request_id": "a", "score": -0.1}, "score"),
        ({"request_id": "a", "score": True}, "score"),
        ({"request_id": "a", "score": "meh"}, "score"),
        ({"request_id": "a", "score": [1]}, "score"),
        ({"request_id": "a", "score": 1, "comment": 5}, "comment"),
        ({"request_id": "a", "score": 1, "comment": "x" * (MAX_COMMENT_CHARS + 1)}, "comment"),
    ],
)
def test_refused_bodies_name_the_param(body: Any, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_feedback(body)
    assert info.value.param == param and info.value.http_status == 400


def test_settings_defaults_are_safe() -> None:
    s = QualitySettings.from_env({})
    assert s.enabled and not s.shadow_enabled  # shadow evaluation is off by default
    assert s == QualitySettings()


def test_settings_from_env() -> None:
    s = QualitySettings.from_env(
        {
            "FASTROUTE_SHADOW_RATE": "0.1",
            "FASTROUTE_SHADOW_BUDGET_USD": "2.5",
            "FASTROUTE_SHADOW_JUDGE": "model:gpt-4o-mini",
            "FASTROUTE_QUALITY_FLOOR": "0.9",
            "FASTROUTE_RECALIBRATE_MIN_SAMPLES": "30",
            "FASTROUTE_RECALIBRATE_WINDOW": "300",
            "FASTROUTE_FEEDBACK_LOG_COMMENTS": "true",
        }
    )
    assert s.shadow_enabled and s.shadow_rate == 0.1 and s.shadow_budget_usd == 2.5
    assert (s.judge, s.target, s.min_samples, s.window, s.log_comments) == ("model:gpt-4o-mini", 0.9, 30, 300, True)
    assert not QualitySettings.from_env({"FASTROUTE_SHADOW_RATE": "1", "FASTROUTE_QUALITY": "off"}).shadow_enabled


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"FASTROUTE_SHADOW_RATE": "1.5"}, "FASTROUTE_SHADOW_RATE"),
        ({"FASTROUTE_SHADOW_BUDGET_USD": "-1"}, "FASTROUTE_SHADOW_BUDGET_USD"),
        ({"FASTROUTE_SHADOW_JUDGE": "vibes"}, "FASTROUTE_SHADOW_JUDGE"),
        ({"FASTROUTE_SHADOW_JUDGE": "model:"}, "FASTROUTE_SHADOW_JUDGE"),
        ({"FASTROUTE_RECALIBRATE_WINDOW": "5"}, "FASTROUTE_RECALIBRATE_WINDOW"),
        ({"FASTROUTE_QUALITY": "maybe"}, "FASTROUTE_QUALITY"),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        QualitySettings.from_env(env)


def test_shadow_apps_allow_list() -> None:
    assert QualitySettings.from_env({"FASTROUTE_SHADOW_APPS": " tutor, support ,,"}).shadow_apps == frozenset(
        {"tutor", "support"}
    )
    assert QualitySettings.from_env({"FASTROUTE_SHADOW_APPS": " , "}).shadow_apps is None


def test_per_app_floors() -> None:
    s = QualitySettings.from_env({"FASTROUTE_QUALITY_FLOOR_APPS": "tutor=0.95, support = 0.6"})
    assert dict(s.app_targets) == {"tutor": 0.95, "support": 0.6}
    hash(s)  # settings stay hashable
    for bad in ("tutor", "tutor=high", "=0.5", "tutor=1.5"):
        with pytest.raises(SettingsError, match="FASTROUTE_QUALITY_FLOOR_APPS"):
            QualitySettings.from_env({"FASTROUTE_QUALITY_FLOOR_APPS": bad})
