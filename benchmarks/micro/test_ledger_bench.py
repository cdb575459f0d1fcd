"""Ledger costs: what a request pays on the hot path (build the record + queue it), batch write
throughput to SQLite (WAL), and spend-query latency over 100k records.

Run: `pytest benchmarks/micro/test_ledger_bench.py --benchmark-enable -s`.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from fastroute.chat_request import parse_chat_request
from fastroute.ledger import LedgerRecord, SqliteLedger
from fastroute.pipeline import RequestContext, Tenant
from fastroute.providers.base import Usage


def _records(n: int, t0: float = 1_790_000_000.0) -> list[LedgerRecord]:
    rng = random.Random(3)
    apps = [f"app{i}" for i in range(20)]
    models = ["sim-budget", "sim-mid", "sim-frontier"]
    return [
        LedgerRecord(ts=t0 + i, request_id=f"r{i}", app=rng.choice(apps), department=f"d{i % 4}",
                     model=rng.choice(models), tier="mid", prompt_tokens=rng.randint(10, 900),
                     completion_tokens=rng.randint(10, 500), cost_usd=rng.random() / 1000,
                     counterfactual_usd=rng.random() / 100, decisions=("pii:redact:email",) if i % 17 == 0 else ())
        for i in range(n)
    ]


def test_record_and_append_per_request(benchmark: Any, tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "l.db")  # not started: appends only queue, as on the hot path
    chat = parse_chat_request({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    ctx = RequestContext(request_id="r", headers={}, chat=chat, tenant=Tenant("a", "d"))
    ctx.served_by, ctx.usage, ctx.cost_usd, ctx.finished = None, Usage(10, 20), 0.001, time.perf_counter()

    def once() -> None:
        ledger.append(LedgerRecord.from_context(ctx))

    benchmark(once)
    ledger._pending.clear()


def test_batched_writes_records_per_second(benchmark: Any, tmp_path: Path) -> None:
    batch = _records(512)

    async def write(path: Path) -> None:
        ledger = SqliteLedger(path, flush_interval_s=60)
        await ledger.start()
        for _ in range(20):
            for r in batch:
                ledger.append(r)
            await ledger.flush()
        await ledger.close()

    counter = iter(range(10**6))
    benchmark.pedantic(lambda: asyncio.run(write(tmp_path / f"w{next(counter)}.db")), rounds=3, iterations=1)
    assert benchmark.stats is not None
    rate = 20 * 512 / benchmark.stats.stats.mean
    benchmark.extra_info["records_per_s"] = round(rate)
    print(f"\nledger writes: {rate:,.0f} records/s (batches of 512, WAL, synchronous=NORMAL)")


def test_spend_query_over_100k_records(benchmark: Any, tmp_path: Path) -> None:
    async def setup() -> SqliteLedger:
        ledger = SqliteLedger(tmp_path / "q.db", flush_interval_s=60)
        await ledger.start()
        for r in _records(100_000):
            ledger.append(r)
        await ledger.flush()
        return ledger

    loop = asyncio.new_event_loop()
    ledger = loop.run_until_complete(setup())
    try:
        rows = benchmark(lambda: loop.run_until_complete(
            ledger.spend(since=1_790_000_000.0 + 50_000, group_by=("app", "model"))))
        assert len(rows) == 60
    finally:
        loop.run_until_complete(ledger.close())
        loop.close()
