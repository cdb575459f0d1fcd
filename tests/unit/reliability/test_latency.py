"""EWMA statistics, p95 and the per-latency-class order of a chain."""

from __future__ import annotations

import pytest

from fastroute.reliability.latency import LatencyBoard
from fastroute.simulator.demo import demo_catalogue

CAT = demo_catalogue("http://127.0.0.1:1")
FRONTIER = CAT.tier_chain("frontier")  # sim-frontier ($3/$15 per M), sim-frontier-openai ($2.5/$10)


def test_ewma_moves_toward_new_samples() -> None:
    board = LatencyBoard(alpha=0.5)
    board.record_first("m", "stream", 1.0)
    board.record_first("m", "stream", 3.0)
    assert board.stats("m", "stream").first_s == pytest.approx(2.0)
    board.record_throughput("m", "stream", 100, 1.0)
    board.record_throughput("m", "stream", 300, 1.0)
    assert board.stats("m", "stream").tokens_per_s == pytest.approx(200.0)


def test_p95_and_hedge_delay_need_enough_samples() -> None:
    board = LatencyBoard()
    for i in range(1, 21):
        board.record_first("m", "complete", i / 100)
    assert board.stats("m", "complete").p95() == pytest.approx(0.19)
    assert board.hedge_delay("m", "complete", min_samples=30, floor_s=0.0) is None
    assert board.hedge_delay("m", "complete", min_samples=20, floor_s=0.0) == pytest.approx(0.19)
    assert board.hedge_delay("m", "complete", min_samples=20, floor_s=0.5) == pytest.approx(0.5)


def test_realtime_prefers_the_fastest_and_measures_unknown_ones_first() -> None:
    board = LatencyBoard()
    board.record_first("sim-frontier", "stream", 0.05)
    board.record_first("sim-frontier-openai", "stream", 0.5)
    assert [m.name for m in board.order(FRONTIER, "realtime", "stream")] == ["sim-frontier", "sim-frontier-openai"]
    board2 = LatencyBoard()
    board2.record_first("sim-frontier", "stream", 0.5)
    board2.record_first("sim-frontier-openai", "stream", 0.05)
    assert [m.name for m in board2.order(FRONTIER, "realtime", "stream")] == ["sim-frontier-openai", "sim-frontier"]
    board3 = LatencyBoard()
    board3.record_first("sim-frontier", "complete", 0.5)  # only whole-answer latency known: used for streams too
    assert next(m.name for m in board3.order(FRONTIER, "realtime", "stream")) == "sim-frontier-openai"


def test_batch_prefers_the_cheapest_and_standard_keeps_catalogue_order() -> None:
    board = LatencyBoard()
    assert [m.name for m in board.order(FRONTIER, "batch", "complete")] == ["sim-frontier-openai", "sim-frontier"]
    assert [m.name for m in board.order(FRONTIER, "standard", "complete")] == ["sim-frontier", "sim-frontier-openai"]
