"""Governance state in Redis, shared by every replica: atomic Lua reserve/settle, TTL'd reservations,
sliding-minute rate windows, and the policy channel that carries reloads to every replica.

Must not know about requests or policies (see `state.StateStore`). Keys start with `prefix`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from fastroute.background import stop_task
from fastroute.errors import StateUnavailable
from fastroute.governance.state import RATE_WINDOW_S, Line

log = logging.getLogger("fastroute.governance")

# Releases a line's reservations whose expiry has passed (a replica died before settling them).
_PURGE_EXPIRED = """
local function purge_expired(h, z, now)
  local dead = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, r in ipairs(dead) do
    local a = redis.call('HGET', h, 'r:' .. r)
    if a then
      redis.call('HINCRBYFLOAT', h, 'reserved', -tonumber(a))
      redis.call('HDEL', h, 'r:' .. r)
    end
    redis.call('ZREM', z, r)
  end
end
"""

# KEYS: per line (hash, zset of reservation expiries). ARGV: now, expiry, rid, amount, then (limit, ttl) per line.
_RESERVE = _PURGE_EXPIRED + """
local now = tonumber(ARGV[1]); local exp = tonumber(ARGV[2]); local rid = ARGV[3]; local amount = tonumber(ARGV[4])
local n = #KEYS / 2
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  purge_expired(h, z, now)
  local spent = tonumber(redis.call('HGET', h, 'spent') or '0')
  local reserved = math.max(0, tonumber(redis.call('HGET', h, 'reserved') or '0'))
  if spent + reserved + amount > tonumber(ARGV[3 + 2*i]) + 1e-12 then return i - 1 end
end
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  local ttl = tonumber(ARGV[4 + 2*i])
  redis.call('HINCRBYFLOAT', h, 'reserved', amount)
  redis.call('HSET', h, 'r:' .. rid, amount)
  redis.call('ZADD', z, exp, rid)
  if redis.call('TTL', h) < 0 then redis.call('EXPIRE', h, ttl) end
  redis.call('EXPIRE', z, ttl)
end
return -1
"""

# KEYS: per line (hash, zset), then the settled marker. ARGV: rid, actual, then ttl per line.
_SETTLE = """
if not redis.call('SET', KEYS[#KEYS], '1', 'NX', 'EX', 86400) then return 0 end
local rid = ARGV[1]; local actual = tonumber(ARGV[2])
local n = (#KEYS - 1) / 2
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  local a = redis.call('HGET', h, 'r:' .. rid)
  if a then
    redis.call('HINCRBYFLOAT', h, 'reserved', -tonumber(a))
    redis.call('HDEL', h, 'r:' .. rid)
  end
  redis.call('ZREM', z, rid)
  if actual > 0 then redis.call('HINCRBYFLOAT', h, 'spent', actual) end
  if redis.call('TTL', h) < 0 then redis.call('EXPIRE', h, tonumber(ARGV[2 + i])) end
end
return 1
"""

# KEYS: per line (hash, zset). ARGV: now. Returns spent, reserved per line (expired reservations purged).
_LEVELS = _PURGE_EXPIRED + """
local now = tonumber(ARGV[1]); local out = {}
for i = 1, #KEYS / 2 do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  purge_expired(h, z, now)
  out[#out+1] = redis.call('HGET', h, 'spent') or '0'
  out[#out+1] = redis.call('HGET', h, 'reserved') or '0'
end
return out
"""

# KEYS: per line (current window, previous window). ARGV: amount, fraction of the window elapsed, check (0/1),
# then limit per line.
_RATE = """
local amount = tonumber(ARGV[1]); local frac = tonumber(ARGV[2]); local check = ARGV[3] == '1'
local n = #KEYS / 2
if check then
  for i = 1, n do
    local cur = tonumber(redis.call('GET', KEYS[2*i-1]) or '0')
    local prev = tonumber(redis.call('GET', KEYS[2*i]) or '0')
    if prev * (1 - frac) + cur + amount > tonumber(ARGV[3 + i]) then return i - 1 end
  end
end
for i = 1, n do
  redis.call('INCRBYFLOAT', KEYS[2*i-1], amount)
  redis.call('EXPIRE', KEYS[2*i-1], 150)
end
return -1
"""


class RedisStore:
    """`StateStore` on Redis: every check-and-update is one Lua script, so replicas never race."""

    remote = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "fastroute",
        clock: Callable[[], float] = time.time,
        max_connections: int = 64,
        timeout_s: float = 2.0,
    ) -> None:
        self._url = url
        self.prefix = prefix
        self.max_connections = max_connections
        self.timeout_s = timeout_s
        self._clock = clock
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}

    @property
    def client(self) -> aioredis.Redis:
        assert self._client is not None, "RedisStore not started"
        return self._client

    async def start(self) -> None:
        # A blocking pool: under a burst, calls wait for a connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url, max_connections=self.max_connections, timeout=self.timeout_s, decode_responses=True,
            socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s,
        )
        self._client = aioredis.Redis(connection_pool=pool)
        await self._client.ping()
        for name, lua in (("reserve", _RESERVE), ("settle", _SETTLE), ("levels", _LEVELS), ("rate", _RATE)):
            self._scripts[name] = self._client.register_script(lua)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            await self._client.connection_pool.disconnect()
            self._client = None

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._scripts[script](keys=keys, args=args)
        except RedisError as e:
            log.warning("governance state: Redis %s failed: %s", script, e)
            raise StateUnavailable("Budget and rate-limit state is unavailable; try again shortly.") from e

    def _keys(self, lines: Sequence[Line]) -> list[str]:
        keys: list[str] = []
        for line in lines:
            keys += [f"{self.prefix}:b:{line.key}", f"{self.prefix}:b:{line.key}:r"]
        return keys

    async def reserve(self, rid: str, lines: Sequence[Line], amount: float, ttl_s: float) -> int | None:
        now = self._clock()
        args: list[Any] = [now, now + ttl_s, rid, amount]
        for line in lines:
            args += [line.limit, int(line.ttl_s)]
        result = int(await self._call("reserve", self._keys(lines), args))
        return None if result < 0 else result

    async def settle(self, rid: str, lines: Sequence[Line], actual: float) -> None:
        keys = [*self._keys(lines), f"{self.prefix}:settled:{rid}"]
        await self._call("settle", keys, [rid, actual, *(int(line.ttl_s) for line in lines)])

    async def levels(self, lines: Sequence[Line]) -> list[tuple[float, float]]:
        flat = await self._call("levels", self._keys(lines), [self._clock()])
        return [(float(flat[i]), max(0.0, float(flat[i + 1]))) for i in range(0, len(flat), 2)]

    def _rate_keys(self, lines: Sequence[Line]) -> tuple[list[str], float]:
        now = self._clock()
        idx = int(now // RATE_WINDOW_S)
        keys: list[str] = []
        for line in lines:
            keys += [f"{self.prefix}:w:{line.key}:{idx}", f"{self.prefix}:w:{line.key}:{idx - 1}"]
        return keys, (now % RATE_WINDOW_S) / RATE_WINDOW_S

    async def rate_acquire(self, lines: Sequence[Line], amount: float) -> int | None:
        keys, frac = self._rate_keys(lines)
        result = int(await self._call("rate", keys, [amount, frac, 1, *(line.limit for line in lines)]))
        return None if result < 0 else result

    async def rate_add(self, lines: Sequence[Line], amount: float) -> None:
        keys, frac = self._rate_keys(lines)
        await self._call("rate", keys, [amount, frac, 0])


class RedisPolicyBus:
    """Carries accepted policy text to every replica: `publish` stores it and notifies the channel."""

    def __init__(self, url: str, *, prefix: str = "fastroute") -> None:
        self._url = url
        self.channel = f"{prefix}:policy"
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, on_policy: Callable[[str], Awaitable[None]]) -> None:
        self._client = aioredis.from_url(self._url, decode_responses=True)
        pubsub = self._client.pubsub()
        await pubsub.subscribe(self.channel)
        self._task = asyncio.create_task(self._listen(pubsub, on_policy), name="policy-bus")

    async def _listen(self, pubsub: Any, on_policy: Callable[[str], Awaitable[None]]) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("policy bus: lost the Redis subscription; retrying")
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    await pubsub.subscribe(self.channel)
                continue
            if message is not None and message.get("type") == "message":
                try:
                    await on_policy(str(message["data"]))
                except Exception:
                    log.exception("policy bus: applying a published policy failed")

    async def latest(self) -> str | None:
        """The last policy published by any replica (None if none yet)."""
        assert self._client is not None
        value = await self._client.get(f"{self.channel}:current")
        return None if value is None else str(value)

    async def publish(self, text: str) -> None:
        assert self._client is not None
        await self._client.set(f"{self.channel}:current", text)
        await self._client.publish(self.channel, text)

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
