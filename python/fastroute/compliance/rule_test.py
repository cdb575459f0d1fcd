"""`fastroute policy test FILE PROMPTS.jsonl`: which content rules would fire on sample prompts.

Lets a governance team try a rule change before it goes live. Reads only the two files it is given.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, TextIO

import orjson

from fastroute.compliance.policy import Compliance
from fastroute.governance.pii import message_texts
from fastroute.governance.policy import Policy


def sample_texts(item: Any) -> tuple[str | None, list[str]]:
    """(app or None, texts) from one JSONL line: a string, {"prompt": ...} or {"messages": [...]}."""
    if isinstance(item, str):
        return None, [item]
    if not isinstance(item, dict):
        raise ValueError("each line must be a JSON string or an object with 'prompt' or 'messages'")
    app = item.get("app")
    if isinstance(item.get("prompt"), str):
        return app, [item["prompt"]]
    if isinstance(item.get("messages"), list):
        return app, [t for _, _, t in message_texts([m for m in item["messages"] if isinstance(m, dict)])]
    raise ValueError("each object needs 'prompt' (a string) or 'messages' (a list)")


def run_rule_test(policy: Policy, prompts: Path, out: TextIO) -> int:
    """Prints one line per sample (which rules fire, with their actions) and a summary; returns 0, or 1
    when the prompts file cannot be read or a line is malformed."""
    comp = policy.compliance if isinstance(policy.compliance, Compliance) else Compliance()
    try:
        lines = prompts.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        print(f"{prompts}: cannot read: {e.strerror}", file=out)
        return 1
    totals: Counter[str] = Counter()
    samples = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            app_name, texts = sample_texts(orjson.loads(line))
        except (orjson.JSONDecodeError, ValueError) as e:
            print(f"{prompts}:{n}: {e}", file=out)
            return 1
        samples += 1
        app = policy.application(app_name or "default")
        if app is None:
            print(f"{n}: app={app_name}: unknown application (refused by the policy)", file=out)
            continue
        fired = comp.fired(texts, comp.for_app(app.name, app.department))
        totals.update(r.name for r in fired)
        shown = ", ".join(f"{r.name} ({r.label})" for r in fired) or "no rule"
        print(f"{n}: app={app.name}: {shown}", file=out)
    summary = ", ".join(f"{name} x{count}" for name, count in sorted(totals.items())) or "none"
    print(f"{samples} samples, {len(comp.rules)} rules; fired: {summary}", file=out)
    return 0
