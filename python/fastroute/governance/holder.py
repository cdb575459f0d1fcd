"""The live policy: an atomically swapped immutable `Policy`, the file poller, and replica sync via Redis.

A reload validates first and swaps only a valid policy; a request keeps the snapshot it started with,
so no request fails because of a reload. Owns no HTTP: `admin` calls `apply_text`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from fastroute.background import stop_task
from fastroute.governance.policy import Policy
from fastroute.governance.policy_load import PolicyError

log = logging.getLogger("fastroute.governance")

Compiler = Callable[[str, str], Policy]  # (text, source) -> Policy, raises PolicyError


class PolicyBus(Protocol):
    async def publish(self, text: str) -> None: ...


class PolicyHolder:
    """Holds the current policy. Reading `current` is one attribute load; swapping is one assignment."""

    def __init__(self, policy: Policy, compiler: Compiler) -> None:
        self.current = policy
        self._compile = compiler
        self.bus: PolicyBus | None = None
        self.reloads = 0
        self.rejected = 0

    def validate(self, text: str, source: str) -> Policy:
        return self._compile(text, source)

    def apply_text(self, text: str, source: str) -> Policy:
        """Validates `text` and swaps it in; raises `PolicyError` (and keeps the old policy) if invalid."""
        try:
            policy = self._compile(text, source)
        except PolicyError as e:
            self.rejected += 1
            log.error("policy reload rejected, keeping policy %s: %s", self.current.digest[:12], e)
            raise
        if policy.digest != self.current.digest:
            self.current = policy
            self.reloads += 1
            log.info("policy %s applied from %s", policy.digest[:12], source)
        return policy

    async def apply_and_publish(self, text: str, source: str) -> Policy:
        """`apply_text`, then tell the other replicas (when a bus is configured)."""
        policy = self.apply_text(text, source)
        if self.bus is not None:
            await self.bus.publish(text)
        return policy

    async def on_published(self, text: str) -> None:
        """A policy published by a replica (maybe this one): applied unless it is already current."""
        if hashlib.sha256(text.encode("utf-8")).hexdigest() == self.current.digest:
            return
        with contextlib.suppress(PolicyError):
            self.apply_text(text, "policy published by a replica")


class PolicyFileWatcher:
    """Polls the policy file (mtime, size, then content hash) and applies valid changes."""

    def __init__(self, holder: PolicyHolder, path: Path, interval_s: float = 0.25) -> None:
        self.holder = holder
        self.path = path
        self.interval_s = interval_s
        self._seen: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    async def start(self) -> None:
        self._seen = self._stat()
        self._task = asyncio.create_task(self._loop(), name="policy-watcher")

    async def check(self) -> bool:
        """One poll; True when a new policy was applied."""
        seen = self._stat()
        if seen is None or seen == self._seen:
            return False
        self._seen = seen
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as e:
            log.error("policy reload: cannot read %s: %s", self.path, e.strerror)
            return False
        if hashlib.sha256(text.encode("utf-8")).hexdigest() == self.holder.current.digest:
            return False
        try:
            await self.holder.apply_and_publish(text, str(self.path))
        except PolicyError:
            return False  # already logged; the old policy stays
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:
                log.exception("policy reload: unexpected error")

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
