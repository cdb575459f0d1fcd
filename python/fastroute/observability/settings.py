"""`ObservabilitySettings`: the `FASTROUTE_*` knobs for metrics, the request log, stats and the dashboard.

Pure: reads only the mapping it is given (through `fastroute.env_values`), never `os.environ`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastroute.env_values import Env, SettingsError, env_bool, env_int, env_opt_str, env_str

REQUEST_LOG_STREAMS = ("stderr", "stdout", "off")
# Switch words people write for a log target: "false" means off, not a file called "false".
_OFF_WORDS = frozenset({"off", "false", "no", "0", "none", ""})
_ON_WORDS = frozenset({"on", "true", "yes", "1"})


@dataclass(frozen=True)
class ObservabilitySettings:
    """What the visibility subsystem exposes and records.

    Attributes:
        metrics: serve `GET /metrics` (Prometheus text exposition).
        metrics_public: with an admin token set, still serve `/metrics` without it (for scrapers that
            cannot send a bearer token).
        request_log: where the one-JSON-line-per-request log goes: `stderr`, `stdout`, `off`, or a file path
            (appended to). `false`, `no`, `0` and `none` mean `off`; `true`, `on`, `yes` and `1` mean `stderr`.
        log_prompts: debugging only: include the prompt text in request log lines (may contain PII).
        dashboard: serve `GET /dashboard` and `GET /admin/stats`.
        latency_window: how many recent requests the p50/p99 latency figures are computed over.
        max_label_values: distinct `app` / `department` label values kept in metrics; the rest are `other`.
        otel_endpoint: OTLP/HTTP traces endpoint (e.g. `http://collector:4318/v1/traces`); unset = no traces.
        otel_service_name: the `service.name` traces carry.
    """

    metrics: bool = True
    metrics_public: bool = False
    request_log: str = "stderr"
    log_prompts: bool = False
    dashboard: bool = True
    latency_window: int = 4096
    max_label_values: int = 100
    otel_endpoint: str | None = None
    otel_service_name: str = "fastroute"

    @classmethod
    def from_env(cls, env: Env) -> ObservabilitySettings:
        return cls(
            metrics=env_bool(env, "FASTROUTE_METRICS", cls.metrics),
            metrics_public=env_bool(env, "FASTROUTE_METRICS_PUBLIC", cls.metrics_public),
            request_log=_request_log(env_str(env, "FASTROUTE_REQUEST_LOG", cls.request_log)),
            log_prompts=env_bool(env, "FASTROUTE_LOG_PROMPTS", cls.log_prompts),
            dashboard=env_bool(env, "FASTROUTE_DASHBOARD", cls.dashboard),
            latency_window=env_int(
                env, "FASTROUTE_STATS_LATENCY_WINDOW", cls.latency_window, minimum=16, maximum=1_000_000
            ),
            max_label_values=env_int(
                env, "FASTROUTE_METRICS_MAX_LABEL_VALUES", cls.max_label_values, minimum=1, maximum=10_000
            ),
            otel_endpoint=_otel_endpoint(env),
            otel_service_name=env_str(env, "FASTROUTE_OTEL_SERVICE_NAME", cls.otel_service_name),
        )


def _request_log(raw: str) -> str:
    value = raw.strip()
    word = value.lower()
    if word in _OFF_WORDS:
        return "off"
    if word in _ON_WORDS:
        return ObservabilitySettings.request_log
    return value


def _otel_endpoint(env: Env) -> str | None:
    endpoint = env_opt_str(env, "FASTROUTE_OTEL_ENDPOINT")
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise SettingsError(f"FASTROUTE_OTEL_ENDPOINT={endpoint!r} must be an http(s) URL")
    return endpoint
