"""`PiiStage`: screens every message text for PII before the prompt leaves, per the application's action.

off: nothing; detect: decision + log only; redact: typed placeholders in place (the upstream, the cache
and the analysis only ever see the redacted text); block: 400 `PolicyViolation` naming the kinds.
Never logs or records the values themselves.
"""

from __future__ import annotations

import asyncio
import logging

from fastroute.errors import PolicyViolation
from fastroute.governance.pii import PiiScanner, message_texts, screen_texts
from fastroute.governance.tenants import governance_of, note
from fastroute.pipeline import RequestContext, Stage

log = logging.getLogger("fastroute.governance")

# Above this many characters the scan (~1 GB/s-ish, but still) runs on a worker thread, off the loop.
OFFLOAD_CHARS = 64 * 1024


class PiiStage(Stage):
    name = "pii"

    def __init__(self) -> None:
        self._fallback = PiiScanner()

    async def on_request(self, ctx: RequestContext) -> None:
        gov = governance_of(ctx)
        if gov is None:
            return
        action = gov.app.rules.pii
        if action == "off":
            return
        scanner = gov.policy.scanner if isinstance(gov.policy.scanner, PiiScanner) else self._fallback
        redact = action == "redact"
        slots = message_texts(ctx.chat.messages)
        if not slots:
            return
        texts = [text for _, _, text in slots]
        if sum(map(len, texts)) > OFFLOAD_CHARS:
            kinds = await asyncio.get_running_loop().run_in_executor(
                None, lambda: screen_texts(scanner, slots, texts, redact=redact)
            )
        else:
            kinds = screen_texts(scanner, slots, texts, redact=redact)
        if not kinds:
            return
        headers = note(ctx, f"pii:{action}:{','.join(kinds)}")
        if action == "block":
            raise PolicyViolation(
                f"The request contains data of kind {', '.join(kinds)}, which the policy of application "
                f"'{gov.app.name}' does not allow to be sent to a model provider.",
                param="messages",
                headers=headers,
            )
        log.info("request %s: pii %s (%s) for app %s", ctx.request_id, action, ",".join(kinds), gov.app.name)
