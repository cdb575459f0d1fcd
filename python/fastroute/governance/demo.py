"""The demo policy: two departments, a few applications and budgets small enough that budget blocking
and downgrading show up after a handful of requests on the simulated upstreams.

`fastroute demo` writes it with `write_demo_policy(data_dir)` and points `FASTROUTE_POLICY` at the file,
so editing it while the demo runs shows live reload.
"""

from __future__ import annotations

from pathlib import Path

from fastroute.governance.policy_load import hash_key

DEMO_KEY = "demo"  # the api_key the demo banner's OpenAI client sends: it belongs to app "playground"


def demo_policy_text() -> str:
    """YAML of the demo policy (valid against `simulator.demo.demo_catalogue`)."""
    return f"""\
# fastroute demo policy. Edit while the demo runs: valid changes apply within a second, invalid ones are
# logged and ignored. Call with `-H 'x-fastroute-app: <name>'`, or the virtual key (Bearer {DEMO_KEY}).
defaults:
  pii: detect                     # off | detect | redact | block
departments:
  product:
    budgets: {{daily_usd: 0.05, action: downgrade}}
    rpm: 600
  research:
    budgets: {{daily_usd: 0.02, action: block}}
applications:
  playground:                     # OpenAI SDK with api_key="{DEMO_KEY}"
    department: product
    keys: [{{id: demo-key, sha256: {hash_key(DEMO_KEY)}}}]
  support-bot:
    department: product
    pii: redact                   # e-mails, cards, phones... never reach the provider
    max_cost_per_request_usd: 0.01    # worst case above it: downgraded to a cheaper tier
    max_cost_action: downgrade
    rpm: 30
  billing:
    department: product
    pii: block
    allowed_tiers: [budget, mid]
    cache: false
  research-agent:
    department: research
    latency_class: batch
    budgets: {{daily_usd: 0.004, action: downgrade}}   # a few frontier answers, then cheaper tiers
  intern-tools:
    department: research
    allowed_models: [sim-budget]
    budgets: {{daily_usd: 0.0005, action: block}}      # 429 after a handful of requests
"""


def write_demo_policy(directory: Path) -> Path:
    """Writes `demo-policy.yaml` under `directory` unless it exists (keeping the user's edits); its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo-policy.yaml"
    if not path.exists():
        path.write_text(demo_policy_text(), encoding="utf-8")
    return path
