"""`FASTROUTE_WORKERS=N`: N gateway processes sharing one port (SO_REUSEPORT), supervised by this parent.

The parent reserves the port (bound, never listening, so it takes no connections), forks the workers,
waits until each is listening, then forwards SIGTERM/SIGINT and respawns a worker that dies. Each worker
builds its own app after the fork (no event loop, thread pool or model session crosses a fork) and
binds its own listening socket on the port; the kernel spreads new connections across them.

What is shared between workers: only what lives outside the process. Budgets and rate limits are shared
through Redis when `FASTROUTE_REDIS_URL` is set, else through a memory-mapped table under the data directory
that the supervisor creates before forking (`governance.shared_table`); circuit breakers are shared through
Redis only. The ledger is one SQLite file (WAL) all workers append to; Prometheus counts are published to each
other (one `/metrics` answer counts every worker). Per worker: the semantic cache and latency statistics.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType

from fastroute.env_values import SettingsError
from fastroute.settings import Settings

log = logging.getLogger("fastroute.server")
STARTUP_TIMEOUT_S = 120.0
CRASH_LOOP_S = 5.0  # a worker dying this soon after it started is not respawned: the parent gives up
CONFIG_ERROR = 2

ServeOne = Callable[[socket.socket, Callable[[str], None]], None]


def reserve_port(host: str, port: int) -> socket.socket:
    """Binds (without listening) so the port is ours; workers then bind it too with SO_REUSEPORT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def serve_workers(settings: Settings, secrets: Mapping[str, str]) -> int:
    """Runs `settings.server.workers` gateway processes until SIGTERM/SIGINT; returns the exit code."""
    from fastroute.governance.shared_table import SharedTableStore
    from fastroute.governance.wiring import shared_table_path
    from fastroute.server.app import create_app
    from fastroute.server.composition import metrics_share_dir
    from fastroute.server.run import bind_socket, run, serve_until_stopped

    def serve_one(reserved: socket.socket, ready: Callable[[str], None]) -> None:
        try:
            app = create_app(settings, secrets=secrets)
        except SettingsError as e:
            print(f"fastroute: configuration error: {e}", file=sys.stderr, flush=True)
            os._exit(CONFIG_ERROR)
        port = reserved.getsockname()[1]
        reserved.close()
        sock = bind_socket(settings.server.host, port, reuse_port=True)

        async def main() -> None:
            await serve_until_stopped(
                app, sock, shutdown_grace_s=settings.server.shutdown_grace_s, on_ready=ready,
                access_log=settings.server.access_log,
            )  # fmt: skip

        run(main)

    if settings.redis_url is None:
        # Twice the workers: a respawned worker takes a free column while its predecessor's is still claimed.
        SharedTableStore.create(shared_table_path(settings), columns=2 * settings.server.workers)
    shutil.rmtree(metrics_share_dir(settings), ignore_errors=True)  # counts of a previous run are not ours
    return supervise(settings.server.workers, settings.server.host, settings.server.port, serve_one)


def supervise(count: int, host: str, port: int, serve_one: ServeOne) -> int:
    """Forks `count` workers running `serve_one(reserved_socket, ready)` and supervises them."""
    reserved = reserve_port(host, port)
    bound = reserved.getsockname()[1]
    ready_r, ready_w = os.pipe()
    ready_fd = [ready_w]  # -1 once the parent stopped listening for readiness (respawned workers)
    workers: dict[int, tuple[int, float]] = {}  # pid -> (index, started at)

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.close(ready_r)

                def ready(url: str) -> None:
                    if ready_fd[0] >= 0:
                        os.write(ready_fd[0], b"1")
                        os.close(ready_fd[0])
                        ready_fd[0] = -1

                serve_one(reserved, ready)
            except BaseException:
                logging.getLogger("fastroute.server").exception("worker %d failed", index)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        workers[pid] = (index, time.monotonic())

    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(workers):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for i in range(count):
            spawn(i)
        os.close(ready_w)
        ready_fd[0] = -1
        code = _wait_ready(count, ready_r, workers)
        if code is not None:
            asked_to_stop = stopping  # before forward() below sets it
            forward(signal.SIGTERM, None)
            _reap_all(workers)
            return 0 if asked_to_stop else code
        display = f"[{host}]" if ":" in host else host
        log.info("%d workers are listening", count)
        print(f"fastroute listening on http://{display}:{bound}", flush=True)
        exit_code = 0
        while workers:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index, started = workers.pop(pid, (-1, 0.0))
            if index < 0 or stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if time.monotonic() - started < CRASH_LOOP_S or code == CONFIG_ERROR:
                log.error("worker %d exited with %d right after starting; stopping all workers", index, code)
                exit_code = 1
                forward(signal.SIGTERM, None)
                continue
            log.warning("worker %d (pid %d) exited with %d; starting a new one", index, pid, code)
            spawn(index)
        return exit_code
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        os.close(ready_r)
        reserved.close()


def _wait_ready(count: int, ready_r: int, workers: dict[int, tuple[int, float]]) -> int | None:
    """None once every worker is listening; an exit code if one died first or none came up in time."""
    seen = 0
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while seen < count:
        for pid in list(workers):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                workers.pop(pid)
                code = os.waitstatus_to_exitcode(status)
                return code if code > 0 else 1
        if time.monotonic() > deadline:
            log.error("workers did not start within %.0fs", STARTUP_TIMEOUT_S)
            return 1
        readable, _, _ = select.select([ready_r], [], [], 0.1)
        if readable:
            data = os.read(ready_r, count)
            if not data:
                return 1
            seen += len(data)
    return None


def _reap_all(workers: dict[int, tuple[int, float]]) -> None:
    for pid in list(workers):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        workers.pop(pid, None)
