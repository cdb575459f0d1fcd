"""Several worker processes share one data directory: recalibration moves and shadow spend reach them all."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from fastroute.quality.settings import QualitySettings
from fastroute.quality.stage import QualityStage
from fastroute.quality.store import utc_day
from fastroute.simulator.demo import demo_catalogue

CATALOGUE = demo_catalogue("http://127.0.0.1:9")


async def test_moves_and_spend_are_shared_through_the_store(tmp_path: Path) -> None:
    settings = QualitySettings(min_samples=5, window=10, shadow_rate=0.5)
    a, b = (QualityStage(settings, CATALOGUE, tmp_path) for _ in range(2))
    for stage in (a, b):
        stage.bind(SimpleNamespace(providers={}, timeouts=None))
    await a.start()
    await b.start()
    try:
        for _ in range(5):
            a._observe("tutor", "budget", False, "shadow")
        assert a.recalibrator.route("tutor", "budget") == "mid"
        assert b.recalibrator.route("tutor", "budget") == "budget"
        await a.store.flush()  # (a's writer does this within 0.2 s)
        await b.sync()
        assert b.recalibrator.route("tutor", "budget") == "mid"
        await a.sync()  # replaying its own move changes nothing
        assert a.recalibrator.route("tutor", "budget") == "mid"

        assert b.reset("tutor") == ["budget"]
        await b.store.flush()
        await a.sync()
        assert a.recalibrator.route("tutor", "budget") == "budget"

        a.store.add_spend(0.3, time.time())
        b.store.add_spend(0.2, time.time())
        await a.store.flush()
        await b.sync()
        assert b.shadow is not None and abs(b.shadow.budget.spent_usd - 0.5) < 1e-9
        assert await a.store.spent_on(utc_day(time.time())) == 0.5
    finally:
        await a.close()
        await b.close()

    # and a restart replays the stored moves
    c = QualityStage(settings, CATALOGUE, tmp_path)
    await c.start()
    try:
        assert c.recalibrator.route("tutor", "budget") == "budget"  # raised, then reset by an operator
        events = await c.store.events()
        assert [(e["action"], e["signal"]) for e in events] == [("raise", "shadow"), ("restore", "operator")]
    finally:
        await c.close()
