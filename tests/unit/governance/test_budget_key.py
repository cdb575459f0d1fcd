"""Budget counter keys: stable names per UTC day and month (replicas and restarts must agree on them)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastroute.governance.policy import budget_key


def test_day_and_month_keys() -> None:
    now = datetime(2026, 3, 7, 23, 59, 59, tzinfo=UTC)
    assert budget_key("app", "billing", "day", now) == "budget:app:billing:day:2026-03-07"
    assert budget_key("department", "finance", "month", now) == "budget:department:finance:month:2026-03"


def test_keys_roll_over_at_utc_midnight_and_month_end() -> None:
    before, after = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), datetime(2026, 2, 1, 0, 0, 0, tzinfo=UTC)
    assert budget_key("app", "a", "day", before) != budget_key("app", "a", "day", after)
    assert budget_key("app", "a", "month", before).endswith("2026-01")
    assert budget_key("app", "a", "month", after).endswith("2026-02")
