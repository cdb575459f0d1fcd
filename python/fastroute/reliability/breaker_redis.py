"""Circuit-breaker state in Redis, so every replica skips (and probes) a failing deployment together.

Each transition is one Lua script, so concurrent replicas never lose an update or double-claim a probe.
Must not import aiohttp.
"""

from __future__ import annotations

import uuid
from typing import Any

from redis.asyncio import Redis

from fastroute.reliability.breaker import CLOSED, BreakerPolicy, BreakerView

_ALLOW = """
local st = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'probe_until')
local state = st[1] or 'closed'
if state == 'closed' then return {state, 1} end
local now = tonumber(ARGV[1])
if now < tonumber(st[2] or '0') or tonumber(st[3] or '0') > now then return {state, 0} end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', tostring(now + tonumber(ARGV[2])))
return {'half_open', 1}
"""

_FAILURE = """
local now, window, threshold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cooldown, retry_after = tonumber(ARGV[4]), tonumber(ARGV[5])
local st = redis.call('HMGET', KEYS[1], 'state', 'open_until')
local state = st[1] or 'closed'
local open_until = -1
if state == 'half_open' then
  open_until = now + cooldown
else
  redis.call('ZADD', KEYS[2], now, ARGV[6])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000))
  if redis.call('ZCARD', KEYS[2]) >= threshold then open_until = now + cooldown end
end
if retry_after > 0 and now + retry_after > open_until then open_until = now + retry_after end
if open_until >= 0 then
  local old = tonumber(st[2] or '0')
  if old > open_until then open_until = old end
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', tostring(open_until), 'probe_until', '0')
  redis.call('DEL', KEYS[2])
  return 'open'
end
return state
"""

_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'closed' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'open_until', '0', 'probe_until', '0')
  redis.call('DEL', KEYS[2])
end
return 'closed'
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBreakerStore:
    """`BreakerStore` in Redis: a hash (state, open_until, probe_until) and a sorted set of failure times."""

    def __init__(self, client: Redis, policy: BreakerPolicy, *, prefix: str = "fastroute:breaker:") -> None:
        self._redis = client
        self._policy = policy
        self._prefix = prefix
        self._allow = client.register_script(_ALLOW)
        self._failure = client.register_script(_FAILURE)
        self._success = client.register_script(_SUCCESS)

    @classmethod
    def from_url(cls, url: str, policy: BreakerPolicy, *, prefix: str = "fastroute:breaker:") -> RedisBreakerStore:
        client = Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        return cls(client, policy, prefix=prefix)

    def _keys(self, name: str) -> list[str]:
        return [f"{self._prefix}{name}", f"{self._prefix}{name}:failures"]

    async def allow(self, name: str, now: float) -> tuple[str, bool]:
        state, allowed = await self._allow(keys=self._keys(name)[:1], args=[now, self._policy.probe_ttl_s])
        return _text(state), bool(int(allowed))

    async def record_failure(self, name: str, now: float, retry_after: float | None) -> str:
        p = self._policy
        ra = min(retry_after, p.retry_after_cap_s) if retry_after else 0.0
        args: list[str | float] = [now, p.window_s, p.failures, p.cooldown_s, ra, f"{now}:{uuid.uuid4().hex[:8]}"]
        return _text(await self._failure(keys=self._keys(name), args=args))

    async def record_success(self, name: str, now: float) -> str:
        return _text(await self._success(keys=self._keys(name), args=[]))

    async def view(self, name: str, now: float) -> BreakerView:
        key, fails = self._keys(name)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(key, "state", "open_until")
        pipe.zcount(fails, now - self._policy.window_s, "+inf")
        (state_raw, open_raw), recent = await pipe.execute()
        state = _text(state_raw) if state_raw is not None else CLOSED
        open_until = float(_text(open_raw)) if open_raw is not None else 0.0
        return BreakerView(state, int(recent), max(0.0, open_until - now) if state != CLOSED else 0.0)

    async def close(self) -> None:
        await self._redis.aclose()
