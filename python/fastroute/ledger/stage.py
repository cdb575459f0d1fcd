"""`LedgerStage`: appends one `LedgerRecord` per request that reached the pipeline, in `on_finish`."""

from __future__ import annotations

from fastroute.ledger.record import LedgerRecord
from fastroute.ledger.store import Ledger
from fastroute.pipeline import RequestContext, Stage


class LedgerStage(Stage):
    """Records every finished request (served, refused or failed). Owns the ledger's lifecycle."""

    name = "ledger"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def start(self) -> None:
        await self.ledger.start()

    async def close(self) -> None:
        await self.ledger.close()

    async def on_finish(self, ctx: RequestContext) -> None:
        self.ledger.append(LedgerRecord.from_context(ctx))
