"""Circuit breakers per deployment: closed -> open after N failures in a window -> half-open probe -> closed.

`BreakerBoard` is what the dispatcher and the admin/metrics code use; the state lives in a `BreakerStore`
(in-process here, Redis in `breaker_redis` so replicas share it). Must not import aiohttp.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("fastroute.reliability")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures: int = 5
    window_s: float = 30.0
    cooldown_s: float = 15.0
    probe_ttl_s: float = 30.0  # a probe that never reports back frees its slot after this long
    retry_after_cap_s: float = 60.0


@dataclass(frozen=True, slots=True)
class BreakerView:
    """One deployment's breaker as reported by `/admin/upstreams`."""

    state: str
    recent_failures: int
    open_for_s: float  # seconds until a probe may go (0 when closed)

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "recent_failures": self.recent_failures, "open_for_s": round(self.open_for_s, 3)}


class BreakerStore(Protocol):
    """Where breaker state lives. Every method is one atomic transition at wall-clock time `now`."""

    async def allow(self, name: str, now: float) -> tuple[str, bool]:
        """(state after the call, may this caller send a request). Claims the probe when half-open."""
        ...

    async def record_failure(self, name: str, now: float, retry_after: float | None) -> str: ...

    async def record_success(self, name: str, now: float) -> str: ...

    async def view(self, name: str, now: float) -> BreakerView: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Local:
    state: str = CLOSED
    failures: deque[float] = field(default_factory=deque)
    open_until: float = 0.0
    probe_until: float = 0.0


class InProcessBreakerStore:
    """Breaker state for one process."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self._policy = policy
        self._states: dict[str, _Local] = {}

    def _get(self, name: str) -> _Local:
        st = self._states.get(name)
        if st is None:
            st = self._states[name] = _Local()
        return st

    async def allow(self, name: str, now: float) -> tuple[str, bool]:
        st = self._get(name)
        if st.state == CLOSED:
            return CLOSED, True
        if now < st.open_until or st.probe_until > now:
            return st.state, False
        st.state, st.probe_until = HALF_OPEN, now + self._policy.probe_ttl_s
        return HALF_OPEN, True

    async def record_failure(self, name: str, now: float, retry_after: float | None) -> str:
        p, st = self._policy, self._get(name)
        open_until: float | None = None
        if st.state == HALF_OPEN:
            open_until = now + p.cooldown_s
        else:
            st.failures.append(now)
            while st.failures and st.failures[0] <= now - p.window_s:
                st.failures.popleft()
            if len(st.failures) >= p.failures:
                open_until = now + p.cooldown_s
        if retry_after is not None and retry_after > 0:
            open_until = max(open_until or 0.0, now + min(retry_after, p.retry_after_cap_s))
        if open_until is not None:
            st.state, st.open_until, st.probe_until = OPEN, max(st.open_until, open_until), 0.0
            st.failures.clear()
        return st.state

    async def record_success(self, name: str, now: float) -> str:
        st = self._get(name)
        if st.state != CLOSED:
            st.state, st.open_until, st.probe_until = CLOSED, 0.0, 0.0
            st.failures.clear()
        return CLOSED

    async def view(self, name: str, now: float) -> BreakerView:
        st = self._get(name)
        recent = sum(1 for t in st.failures if t > now - self._policy.window_s)
        return BreakerView(st.state, recent, max(0.0, st.open_until - now) if st.state != CLOSED else 0.0)

    async def close(self) -> None:
        return None


class BreakerBoard:
    """The breakers of every deployment: ask before calling, report after; read for metrics and admin."""

    def __init__(
        self,
        store: BreakerStore,
        names: Iterable[str] = (),
        *,
        clock: Callable[[], float] = time.time,
        sync_s: float = 0.0,
    ) -> None:
        """`sync_s` > 0 (for a shared store): a breaker seen closed is trusted for that long without asking
        the store, so the hot path makes no round trip; another replica's opening shows up within `sync_s`."""
        self._store = store
        self._clock = clock
        self._sync_s = sync_s
        self._mirror: dict[str, str] = dict.fromkeys(names, CLOSED)
        self._read_at: dict[str, float] = {}  # monotonic time of the last store read per deployment

    @property
    def store(self) -> BreakerStore:
        return self._store

    async def allow(self, name: str) -> bool:
        """True when a request may go to `name` now (a half-open breaker lets exactly one probe through)."""
        now = time.monotonic()
        if (
            self._sync_s > 0
            and self._mirror.get(name) == CLOSED
            and now - self._read_at.get(name, -1e18) < self._sync_s
        ):
            return True
        try:
            state, allowed = await self._store.allow(name, self._clock())
        except Exception as e:  # a broken shared store must not take the gateway down: fail open
            log.warning("breaker store unavailable (%s); allowing %s", e, name)
            return True
        self._mirror[name] = state
        self._read_at[name] = now
        return allowed

    async def failure(self, name: str, retry_after: float | None = None) -> None:
        try:
            state = await self._store.record_failure(name, self._clock(), retry_after)
        except Exception as e:
            log.warning("breaker store unavailable (%s); failure of %s not recorded", e, name)
            return
        if state == OPEN and self._mirror.get(name) != OPEN:
            log.warning("circuit opened for deployment %s", name)
        self._mirror[name] = state

    async def success(self, name: str) -> None:
        if self._sync_s > 0 and self._mirror.get(name) == CLOSED:
            return  # closing a closed breaker changes nothing; the store was read when it was allowed
        try:
            state = await self._store.record_success(name, self._clock())
        except Exception as e:
            log.warning("breaker store unavailable (%s); success of %s not recorded", e, name)
            return
        self._mirror[name] = state

    def snapshot(self) -> dict[str, str]:
        """Last known state per deployment ("closed" | "open" | "half_open"), without I/O (for metrics)."""
        return dict(self._mirror)

    async def views(self) -> dict[str, BreakerView]:
        """Fresh state of every known deployment (reads the shared store)."""
        now = self._clock()
        out: dict[str, BreakerView] = {}
        for name in sorted(self._mirror):
            try:
                out[name] = await self._store.view(name, now)
            except Exception as e:
                log.warning("breaker store unavailable (%s)", e)
                out[name] = BreakerView(self._mirror[name], 0, 0.0)
                continue
            self._mirror[name] = out[name].state
        return out

    async def close(self) -> None:
        await self._store.close()
