"""Wilson intervals and the outcome window."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastroute.quality.stats import OutcomeWindow, RateEstimate, wilson


def test_wilson_matches_textbook_values() -> None:
    # 5/10 at 95%: the classic worked example, (0.2366, 0.7634)
    low, high = wilson(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    # 0 successes: the lower bound is 0 and the upper bound z^2 / (n + z^2)
    low, high = wilson(0, 20)
    assert low == 0.0
    assert high == pytest.approx(1.96**2 / (20 + 1.96**2))


def test_no_observations_know_nothing() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    assert RateEstimate.of(0, 0).rate is None


@given(st.integers(min_value=1, max_value=500), st.data())
def test_interval_contains_the_rate_and_narrows_with_n(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=0, max_value=n))
    low, high = wilson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    low4, high4 = wilson(4 * k, 4 * n)
    assert high4 - low4 <= high - low + 1e-12


def test_higher_confidence_is_wider() -> None:
    narrow = wilson(30, 50, z=1.0)
    wide = wilson(30, 50, z=2.58)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]


def test_window_forgets_the_oldest_outcomes() -> None:
    window = OutcomeWindow(4)
    for passed in (True, True, False, False):
        window.add(passed)
    assert window.estimate(1.96).successes == 2
    window.add(False)  # pushes out a pass
    window.add(False)  # and the other
    est = window.estimate(1.96)
    assert (est.n, est.successes) == (4, 0)
    window.clear()
    assert len(window) == 0


def test_as_dict_rounds_once() -> None:
    d = RateEstimate.of(1, 3).as_dict()
    assert d["n"] == 3 and d["rate"] == round(1 / 3, 4)
    assert isinstance(d["ci_low"], float) and not math.isnan(d["ci_low"])
