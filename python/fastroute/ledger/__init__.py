"""The spend ledger: one `LedgerRecord` per finished request, stored in SQLite (WAL), queryable by others.

Query API (what `/admin/spend`, `/admin/stats` and the dashboard build on)::

    ledger = SqliteLedger(settings.data_dir / "ledger.sqlite3")
    await ledger.start()                       # opens the DB, starts the background writer
    ledger.append(record)                      # never blocks the event loop; batched to disk
    rows = await ledger.spend(app="billing", since=t0, until=t1, group_by=("app", "model"))
    # -> [{"app": "billing", "model": "sim-budget", "requests": 12, "served": 11, "errors": 1,
    #      "prompt_tokens": ..., "completion_tokens": ..., "cost_usd": ..., "counterfactual_usd": ...,
    #      "savings_usd": ..., "cache_hits": ..., "blocked": ..., "downgraded": ..., "redacted": ...}]
    recs = await ledger.records(app="billing", limit=100)          # newest first, list[LedgerRecord]
    await ledger.close()                       # flushes everything still queued

`since` / `until` are unix seconds (float) or aware `datetime`s; `group_by` names come from `GROUP_BY`
(`app department key_id tier model provider status cache_status hour day month`; `()` = one total row).
Queries first flush what is queued, so a record appended before a query is always visible to it.
`LedgerStage` records every request that reached the pipeline exactly once (failures too, cost 0 when
nothing was served). Records never hold prompt text or PII values: only counts, names and decisions.
"""

from fastroute.ledger.record import LedgerRecord
from fastroute.ledger.stage import LedgerStage
from fastroute.ledger.store import GROUP_BY, Ledger, SqliteLedger

__all__ = ["GROUP_BY", "Ledger", "LedgerRecord", "LedgerStage", "SqliteLedger"]
