"""The one typed settings object, built once from `FASTROUTE_*` variables and validated at start-up.

Nothing else in fastroute reads `os.environ`: `cli.py` passes `os.environ` to `Settings.from_env`,
tests pass a dict. Subsystems own a frozen sub-settings dataclass with its own `from_env`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastroute.cache.settings import CacheSettings
from fastroute.env_values import (
    Env,
    SettingsError,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_opt_float,
    env_opt_str,
    env_path,
    env_str,
)
from fastroute.governance.settings import GovernanceSettings
from fastroute.observability.settings import ObservabilitySettings
from fastroute.quality.settings import QualitySettings
from fastroute.reliability.settings import ReliabilitySettings

__all__ = ["RouterSettings", "ServerSettings", "Settings", "SettingsError", "UpstreamSettings"]

REPO_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 4 * 1024 * 1024
    max_in_flight: int = 1024
    shutdown_grace_s: float = 10.0
    workers: int = 1
    log_level: str = "info"
    access_log: bool = False

    @classmethod
    def from_env(cls, env: Env) -> ServerSettings:
        return cls(
            host=env_str(env, "FASTROUTE_HOST", cls.host),
            port=env_int(env, "FASTROUTE_PORT", cls.port, minimum=0, maximum=65535),
            max_body_bytes=env_int(env, "FASTROUTE_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1024),
            max_in_flight=env_int(env, "FASTROUTE_MAX_IN_FLIGHT", cls.max_in_flight, minimum=1),
            shutdown_grace_s=env_float(env, "FASTROUTE_SHUTDOWN_GRACE_S", cls.shutdown_grace_s, minimum=0),
            workers=env_int(env, "FASTROUTE_WORKERS", cls.workers, minimum=1, maximum=256),
            log_level=env_choice(env, "FASTROUTE_LOG_LEVEL", cls.log_level, ("debug", "info", "warning", "error")),
            access_log=env_bool(env, "FASTROUTE_ACCESS_LOG", cls.access_log),
        )


@dataclass(frozen=True)
class UpstreamSettings:
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 60.0
    total_timeout_s: float = 600.0
    pool_limit_per_host: int = 256

    @classmethod
    def from_env(cls, env: Env) -> UpstreamSettings:
        return cls(
            connect_timeout_s=env_float(
                env, "FASTROUTE_UPSTREAM_CONNECT_TIMEOUT_S", cls.connect_timeout_s, minimum=0.001
            ),
            first_token_timeout_s=env_float(
                env, "FASTROUTE_UPSTREAM_FIRST_TOKEN_TIMEOUT_S", cls.first_token_timeout_s, minimum=0.001
            ),
            total_timeout_s=env_float(env, "FASTROUTE_UPSTREAM_TOTAL_TIMEOUT_S", cls.total_timeout_s, minimum=0.001),
            pool_limit_per_host=env_int(env, "FASTROUTE_UPSTREAM_POOL_LIMIT", cls.pool_limit_per_host, minimum=1),
        )


@dataclass(frozen=True)
class RouterSettings:
    """How `model: "auto"` picks a tier. Exactly one of quality_target / frontier_share may be set.

    With a frontier share, the cut-offs follow the last `live_share_window` requests' scores (0 = use the
    card's thresholds as calibrated on the training mix).
    """

    quality_target: float | None = None
    frontier_share: float | None = None
    allow_tier_header: bool = True
    live_share_window: int = 1000

    @classmethod
    def from_env(cls, env: Env) -> RouterSettings:
        quality = env_opt_float(env, "FASTROUTE_QUALITY_TARGET", minimum=0.0, maximum=1.0)
        share = env_opt_float(env, "FASTROUTE_FRONTIER_SHARE", minimum=0.0, maximum=1.0)
        if quality is not None and share is not None:
            raise SettingsError("set only one of FASTROUTE_QUALITY_TARGET and FASTROUTE_FRONTIER_SHARE")
        return cls(
            quality_target=quality,
            frontier_share=share,
            allow_tier_header=env_bool(env, "FASTROUTE_ALLOW_TIER_HEADER", cls.allow_tier_header),
            live_share_window=env_int(
                env, "FASTROUTE_FRONTIER_SHARE_WINDOW", cls.live_share_window, minimum=0, maximum=1_000_000
            ),
        )


@dataclass(frozen=True)
class Settings:
    """Everything fastroute is tuned by. Build with `Settings.from_env(os.environ)`."""

    server: ServerSettings = field(default_factory=ServerSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    router: RouterSettings = field(default_factory=RouterSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    reliability: ReliabilitySettings = field(default_factory=ReliabilitySettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    governance: GovernanceSettings = field(default_factory=GovernanceSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    config_path: Path | None = None
    policy_path: Path | None = None
    models_dir: Path = REPO_MODELS_DIR
    data_dir: Path = Path(".fastroute")
    redis_url: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Env) -> Settings:
        config_path = env_path(env, "FASTROUTE_CONFIG", None)
        if config_path is not None and not config_path.is_file():
            raise SettingsError(f"FASTROUTE_CONFIG={config_path} does not exist")
        policy_path = env_path(env, "FASTROUTE_POLICY", None)
        if policy_path is not None and not policy_path.is_file():
            raise SettingsError(f"FASTROUTE_POLICY={policy_path} does not exist")
        models_dir = env_path(env, "FASTROUTE_MODELS_DIR", REPO_MODELS_DIR)
        assert models_dir is not None
        data_dir = env_path(env, "FASTROUTE_DATA_DIR", Path(".fastroute"))
        assert data_dir is not None
        return cls(
            server=ServerSettings.from_env(env),
            upstream=UpstreamSettings.from_env(env),
            router=RouterSettings.from_env(env),
            observability=ObservabilitySettings.from_env(env),
            reliability=ReliabilitySettings.from_env(env),
            quality=QualitySettings.from_env(env),
            governance=GovernanceSettings.from_env(env),
            cache=CacheSettings.from_env(env),
            config_path=config_path,
            policy_path=policy_path,
            models_dir=models_dir,
            data_dir=data_dir,
            redis_url=env_opt_str(env, "FASTROUTE_REDIS_URL"),
            admin_token=env_opt_str(env, "FASTROUTE_ADMIN_TOKEN"),
        )
