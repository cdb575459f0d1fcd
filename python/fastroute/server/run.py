"""Runs an app on uvloop until SIGINT/SIGTERM, then shuts down gracefully (stop accepting, drain, close)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import uvloop
from aiohttp import web

from fastroute.reliability.protocol_errors import JsonErrorAppRunner

log = logging.getLogger("fastroute.server")


# Young-generation collections every 20,000 net allocations instead of 700: a request allocates a few
# hundred tracked objects that almost all die by reference counting, so frequent young collections
# only re-walk live in-flight state (measured in benchmarks/load/stage_costs.py).
GC_THRESHOLDS = (20_000, 20, 20)


def settle_heap() -> None:
    """Once the app is up: what start-up built (modules, models, policy, catalogue) lives as long as the
    process, so move it out of the collector's sight; later collections walk only request-time objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket; with `reuse_port` several worker processes may share the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve_until_stopped(
    app: web.Application,
    sock: socket.socket,
    *,
    shutdown_grace_s: float,
    on_ready: Callable[[str], Awaitable[None] | None] | None = None,
    access_log: bool = False,
) -> None:
    # Shutdown order (aiohttp's): stop listening, close idle keep-alive connections, on_shutdown (new
    # requests on open connections get 503), wait up to the grace for in-flight ones, then cleanup_ctx
    # (stages close, so the ledger flushes).
    # aiohttp reads a timeout of 0 as "no limit"; a grace of 0 here means "do not wait".
    runner = JsonErrorAppRunner(
        app, shutdown_timeout=max(shutdown_grace_s, 0.001), access_log=log if access_log else None, handle_signals=False
    )
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    settle_heap()
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_ready is not None:
            result = on_ready(url)
            if result is not None:
                await result
        await stop.wait()
        log.info("shutting down: draining in-flight requests (up to %.1fs)", shutdown_grace_s)
    finally:
        await runner.cleanup()


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Runs `main` on a uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
