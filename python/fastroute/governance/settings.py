"""`GovernanceSettings`: governance knobs from `FASTROUTE_*` variables (policy path, Redis URL and admin
token live in the main `Settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from fastroute.env_values import Env, env_float, env_str


@dataclass(frozen=True)
class GovernanceSettings:
    """`policy_poll_s`: how often the policy file is checked; `reservation_ttl_s`: how long an unsettled
    budget reservation (a crashed replica's) holds budget, never less than the upstream total timeout + 30 s;
    `redis_prefix`: namespace of governance keys."""

    policy_poll_s: float = 0.25
    reservation_ttl_s: float = 300.0
    redis_prefix: str = "fastroute"

    @classmethod
    def from_env(cls, env: Env) -> GovernanceSettings:
        return cls(
            policy_poll_s=env_float(env, "FASTROUTE_POLICY_POLL_S", cls.policy_poll_s, minimum=0.01, maximum=60),
            reservation_ttl_s=env_float(
                env, "FASTROUTE_BUDGET_RESERVATION_TTL_S", cls.reservation_ttl_s, minimum=1, maximum=86400
            ),
            redis_prefix=env_str(env, "FASTROUTE_REDIS_PREFIX", cls.redis_prefix),
        )
