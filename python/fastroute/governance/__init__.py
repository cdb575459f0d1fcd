"""Governance: tenants, the live policy (YAML, validated, hot-reloaded), PII screening, rate limits, cost
ceilings and budgets with shared state (in-process or Redis), and the admin/audit routes.

Kept import-light on purpose (settings import `governance.settings`); the pieces live in submodules:
`policy` / `policy_load` (rules and validation), `holder` (live reload), `state` / `redis_store` (shared
counters), `tenants`, `screening`, `limits` (the stages), `admin` (routes), `wiring` (what the
composition root calls), `demo` (the demo policy).
"""
