"""Auto-recalibration: demote on confident failure, restore on confident recovery, bounded and per app."""

from __future__ import annotations

from fastroute.quality.recalibration import RecalibrationEvent, Recalibrator


def recal(**kw: object) -> Recalibrator:
    args: dict[str, object] = {"target": 0.8, "min_samples": 10, "window": 50}
    args.update(kw)
    return Recalibrator(**args)  # type: ignore[arg-type]


def feed(
    r: Recalibrator, app: str, tier: str, outcomes: list[bool], signal: str = "shadow"
) -> list[RecalibrationEvent]:
    return [e for e in (r.observe(app, tier, o, signal, now=1.0) for o in outcomes) if e is not None]


def test_waits_for_min_samples_then_demotes_a_failing_tier() -> None:
    r = recal()
    assert feed(r, "tutor", "budget", [False] * 9) == []
    assert r.route("tutor", "budget") == "budget"
    (event,) = feed(r, "tutor", "budget", [False])
    assert event.action == "raise" and event.tier == "budget" and event.n == 10
    assert event.ci_high < 0.8
    assert r.route("tutor", "budget") == "mid"
    assert r.route("tutor", "mid") == "mid"
    assert r.route("support", "budget") == "budget"  # other applications are untouched


def test_a_rate_near_target_is_not_confident_enough_to_move() -> None:
    r = recal(window=200)
    outcomes = ([True] * 3 + [False]) * 50  # 75% vs target 80%: not confidently below at any n up to 200
    assert feed(r, "a", "budget", outcomes) == []


def test_a_clearly_bad_rate_moves_even_with_some_passes() -> None:
    r = recal(window=100)
    events = feed(r, "a", "budget", ([True] + [False] * 3) * 25)  # 25%
    assert [e.action for e in events] == ["raise"]


def test_steps_one_tier_at_a_time_and_never_demotes_the_frontier() -> None:
    r = recal()
    feed(r, "a", "budget", [False] * 10)
    assert r.route("a", "budget") == "mid"
    feed(r, "a", "mid", [False] * 10)
    assert r.route("a", "budget") == "frontier"
    assert r.route("a", "mid") == "frontier"
    assert feed(r, "a", "frontier", [False] * 50) == []
    assert r.demoted("a") == frozenset({"budget", "mid"})


def test_restores_only_on_confident_shadow_evidence() -> None:
    r = recal()
    feed(r, "a", "budget", [False] * 10)
    # feedback about a demoted tier does not restore it (it measures what was served instead)
    assert feed(r, "a", "budget", [True] * 30, signal="feedback") == []
    assert r.route("a", "budget") == "mid"
    # 9 good probes are not enough evidence; the 10th-20th make the lower bound clear the target
    events = feed(r, "a", "budget", [True] * 20)
    assert [e.action for e in events] == ["restore"]
    assert r.route("a", "budget") == "budget"


def test_feedback_can_demote() -> None:
    r = recal()
    events = feed(r, "a", "budget", [False] * 10, signal="feedback")
    assert [e.signal for e in events] == ["feedback"]


def test_disabled_measures_but_never_moves() -> None:
    r = recal(enabled=False)
    assert feed(r, "a", "budget", [False] * 40) == []
    assert r.estimate("a", "budget", "shadow").n == 40


def test_events_replay_restores_state() -> None:
    r = recal()
    events = feed(r, "a", "budget", [False] * 10)
    fresh = recal()
    for e in events:
        fresh.apply(e)
    assert fresh.route("a", "budget") == "mid"


def test_operator_reset_and_bounded_memory() -> None:
    r = recal(max_keys=2)
    feed(r, "a", "budget", [False] * 10)
    assert r.reset("a") == ["budget"]
    assert r.route("a", "budget") == "budget"
    r.observe("b", "budget", True)
    r.observe("c", "budget", True)  # a third key is over the bound: ignored
    assert r.estimate("c", "budget", "shadow").n == 0


def test_unknown_tier_or_signal_is_ignored() -> None:
    r = recal()
    assert r.observe("a", "premium", False) is None
    assert r.observe("a", "budget", False, signal="vibes") is None


def test_a_replayed_move_starts_the_windows_afresh() -> None:
    worker_a, worker_b = recal(), recal()
    feed(worker_b, "a", "budget", [False] * 9)  # b has seen failures too, not yet enough to move
    (event,) = feed(worker_a, "a", "budget", [False] * 10)
    worker_b.apply(event)  # a's move reaches b through the store
    assert worker_b.estimate("a", "budget", "shadow").n == 0
    restored = feed(worker_a, "a", "budget", [True] * 20)
    worker_b.apply(restored[0])
    # b does not flip routing straight back on evidence from before the recovery
    assert feed(worker_b, "a", "budget", [True]) == []
    assert worker_b.route("a", "budget") == "budget"


def test_per_app_floors_override_the_default() -> None:
    r = recal(window=200, app_targets={"strict": 0.95, "lenient": 0.5})
    outcomes = ([True] * 4 + [False]) * 40  # 80%
    assert [e.target for e in feed(r, "strict", "budget", outcomes)] == [0.95]  # confidently below 0.95
    assert feed(r, "lenient", "budget", outcomes) == []
    assert feed(r, "default", "budget", outcomes) == []  # 80% vs the default 0.8: not confident
    assert r.snapshot()["app_targets"] == {"lenient": 0.5, "strict": 0.95}
