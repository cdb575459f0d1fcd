"""`QualitySettings`: the `FASTROUTE_*` knobs of the quality loop (feedback, shadow evaluation, recalibration).

Pure: reads only the mapping it is given (through `fastroute.env_values`), never `os.environ`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastroute.env_values import Env, SettingsError, env_bool, env_float, env_int, env_str

JUDGES = ("auto", "exact", "similarity")


@dataclass(frozen=True)
class QualitySettings:
    """How fastroute measures the quality each tier delivers and corrects routing when it falls.

    Attributes:
        enabled: record a routing record per request and accept `POST /v1/feedback`.
        shadow_rate: share (0..1) of requests routed below the frontier that are also asked of the frontier
            tier in the background and compared. 0 turns shadow evaluation off (the default).
        shadow_apps: applications shadow evaluation samples (None: every application).
        shadow_budget_usd: what shadow calls (and a judge model) may spend per UTC day; shadowing stops
            when it is spent.
        shadow_concurrency: shadow calls in flight at once; samples beyond `4 x` this are skipped.
        shadow_max_tokens: cap on a shadow answer's length (tokens), also bounding its worst-case cost.
        judge: `auto` (exact match for JSON / tool answers and final-answer markers, else similarity),
            `exact`, `similarity`, or `model:<catalogue model>` to ask a judge model through the gateway.
        agree_threshold: similarity (token-overlap F1, 0..1) at or above which two answers agree.
        target: the agreement / positive-feedback rate each tier must deliver per application.
        app_targets: per-application floors overriding `target` (`FASTROUTE_QUALITY_FLOOR_APPS=a=0.9,b=0.7`).
        recalibrate: move an application's routing up when a tier is confidently below `target`.
        min_samples: observations needed before a tier's rate is judged (each way).
        window: recent observations per (application, tier, signal) the decision is made on.
        confidence_z: z of the Wilson interval (1.96 = 95%).
        retention_days: routing records and labels older than this are deleted.
        max_records: routing records kept at most (oldest deleted first).
        log_comments: debugging only: include feedback comments in log lines.
        labels: write shadow outcomes as labelled rows (`labels.jsonl`, routing-data schema, holds prompts).
        labels_max_rows: labelled rows kept at most (oldest dropped first, checked hourly).
    """

    enabled: bool = True
    shadow_rate: float = 0.0
    shadow_apps: frozenset[str] | None = None
    shadow_budget_usd: float = 1.0
    shadow_concurrency: int = 4
    shadow_max_tokens: int = 1024
    judge: str = "auto"
    agree_threshold: float = 0.5
    target: float = 0.8
    app_targets: tuple[tuple[str, float], ...] = ()  # (app, floor) pairs: hashable, like every setting
    recalibrate: bool = True
    min_samples: int = 20
    window: int = 200
    confidence_z: float = 1.96
    retention_days: float = 30.0
    max_records: int = 1_000_000
    log_comments: bool = False
    labels: bool = True
    labels_max_rows: int = 100_000

    @property
    def shadow_enabled(self) -> bool:
        return self.enabled and self.shadow_rate > 0.0

    @classmethod
    def from_env(cls, env: Env) -> QualitySettings:
        judge = env_str(env, "FASTROUTE_SHADOW_JUDGE", cls.judge).strip()
        if judge not in JUDGES and not (judge.startswith("model:") and len(judge) > len("model:")):
            raise SettingsError(
                f"FASTROUTE_SHADOW_JUDGE={judge!r} must be one of {', '.join(JUDGES)} or model:<catalogue model>"
            )
        return cls(
            enabled=env_bool(env, "FASTROUTE_QUALITY", cls.enabled),
            shadow_rate=env_float(env, "FASTROUTE_SHADOW_RATE", cls.shadow_rate, minimum=0.0, maximum=1.0),
            shadow_apps=_names(env_str(env, "FASTROUTE_SHADOW_APPS", "")),
            shadow_budget_usd=env_float(env, "FASTROUTE_SHADOW_BUDGET_USD", cls.shadow_budget_usd, minimum=0.0),
            shadow_concurrency=env_int(
                env, "FASTROUTE_SHADOW_CONCURRENCY", cls.shadow_concurrency, minimum=1, maximum=256
            ),
            shadow_max_tokens=env_int(
                env, "FASTROUTE_SHADOW_MAX_TOKENS", cls.shadow_max_tokens, minimum=16, maximum=1_000_000
            ),
            judge=judge,
            agree_threshold=env_float(
                env, "FASTROUTE_SHADOW_AGREE_THRESHOLD", cls.agree_threshold, minimum=0.0, maximum=1.0
            ),
            target=env_float(env, "FASTROUTE_QUALITY_FLOOR", cls.target, minimum=0.0, maximum=1.0),
            app_targets=_floors(env_str(env, "FASTROUTE_QUALITY_FLOOR_APPS", "")),
            recalibrate=env_bool(env, "FASTROUTE_RECALIBRATE", cls.recalibrate),
            min_samples=env_int(env, "FASTROUTE_RECALIBRATE_MIN_SAMPLES", cls.min_samples, minimum=1),
            window=env_int(env, "FASTROUTE_RECALIBRATE_WINDOW", cls.window, minimum=1, maximum=100_000),
            confidence_z=env_float(env, "FASTROUTE_RECALIBRATE_Z", cls.confidence_z, minimum=0.0, maximum=10.0),
            retention_days=env_float(env, "FASTROUTE_QUALITY_RETENTION_DAYS", cls.retention_days, minimum=0.001),
            max_records=env_int(env, "FASTROUTE_QUALITY_MAX_RECORDS", cls.max_records, minimum=100),
            log_comments=env_bool(env, "FASTROUTE_FEEDBACK_LOG_COMMENTS", cls.log_comments),
            labels=env_bool(env, "FASTROUTE_SHADOW_LABELS", cls.labels),
            labels_max_rows=env_int(env, "FASTROUTE_SHADOW_LABELS_MAX_ROWS", cls.labels_max_rows, minimum=1),
        )._checked()

    def _checked(self) -> QualitySettings:
        if self.window < self.min_samples:
            raise SettingsError(
                f"FASTROUTE_RECALIBRATE_WINDOW={self.window} is below FASTROUTE_RECALIBRATE_MIN_SAMPLES="
                f"{self.min_samples}"
            )
        return self


def _names(raw: str) -> frozenset[str] | None:
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    return names or None


def _floors(raw: str) -> tuple[tuple[str, float], ...]:
    floors: dict[str, float] = {}
    for item in (i.strip() for i in raw.split(",")):
        if not item:
            continue
        app, sep, value = item.partition("=")
        try:
            floor = float(value)
        except ValueError:
            floor = -1.0
        if not sep or not app.strip() or not 0.0 <= floor <= 1.0:
            raise SettingsError(f"FASTROUTE_QUALITY_FLOOR_APPS: {item!r} is not app=rate with a rate from 0 to 1")
        floors[app.strip()] = floor
    return tuple(sorted(floors.items()))
