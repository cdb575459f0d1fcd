"""`RequestContext`: everything known about one request as it moves through the pipeline.

Pure data: must not import aiohttp. Stages read and fill it; the server turns it into headers and logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastroute.chat_request import ChatRequest
from fastroute.errors import FastrouteError
from fastroute.providers.base import Usage
from fastroute.routing.decision import RouteDecision


@dataclass(frozen=True, slots=True)
class Tenant:
    """Who is calling: application, department and (with virtual keys) which key."""

    app: str = "default"
    department: str = "default"
    key_id: str | None = None


@dataclass(slots=True)
class RequestContext:
    request_id: str
    headers: Mapping[str, str]
    chat: ChatRequest
    started: float = field(default_factory=time.perf_counter)
    tenant: Tenant = field(default_factory=Tenant)
    prompt_text: str = ""
    analysis: Any = None  # fastroute.native.PromptAnalysis once analysed
    decision: RouteDecision | None = None
    allowed_tiers: frozenset[str] | None = None  # set by policy; None = any tier
    latency_class: str = "standard"
    cache_status: str = "off"  # off | bypass | miss | hit-exact | hit-semantic
    cache_allowed: bool = True  # policy may turn the response cache off for an application
    cached_body: dict[str, Any] | None = None
    response_body: dict[str, Any] | None = None  # the upstream's whole (non-streamed) answer
    served_by: str | None = None  # model name that actually answered
    attempts: int = 0
    fallback_reason: str | None = None
    usage: Usage | None = None
    usage_estimated: bool = False
    cost_usd: float = 0.0
    counterfactual_usd: float = 0.0
    upstream_s: float = 0.0
    route_s: float = 0.0  # prompt analysis + routing decision, set by Gateway.prepare
    ttft_s: float | None = None
    status: int = 200
    error: FastrouteError | None = None
    streamed_text: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)  # policy outcomes, e.g. "pii:redact:email"
    response_headers: dict[str, str] = field(default_factory=dict)
    finished: float | None = None
    governance: Any = None  # fastroute.governance.tenants.RequestGovernance: policy snapshot, reservation
    # Residency / provider allow-list (compliance): the dispatcher tries, hedges and escalates only to
    # deployments (ModelEntry) for which this returns True. None = any deployment.
    deployment_allowed: Callable[[Any], bool] | None = None
    compliance_route: str | None = None  # a content rule's `route:` target (tier or model), set by compliance

    def overhead_s(self, now: float | None = None) -> float:
        """Time spent in fastroute itself: wall time so far minus time waiting on upstreams."""
        end = now if now is not None else (self.finished or time.perf_counter())
        return max(0.0, end - self.started - self.upstream_s)
