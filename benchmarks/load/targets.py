"""Starts and stops the processes a load run measures: fake upstream, fastroute, optional nginx.

Each target is a child process pinned with `taskset`; peak RSS and CPU time come from /proc.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pin(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


@dataclass
class Target:
    """A running server the driver can aim at."""

    name: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    extra_pids: list[int] = field(default_factory=list)
    fastroute: bool = False  # answers /admin/stats (its own view of its overhead)

    def pids(self) -> list[int]:
        """The process and its children (workers, nginx workers)."""
        if self.proc is None:
            return []
        found = [self.proc.pid, *self.extra_pids]
        for pid in list(found):
            try:
                kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found += [int(k) for k in kids if int(k) not in found]
        return found

    def peak_rss_mb(self) -> float:
        """Sum of VmHWM (peak resident set) over the target's processes."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024.0

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far by the target's processes."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / tick

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_http(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer /healthz within {timeout_s:.0f}s")


def start_upstream(cpus: str | None, chunk_delay_ms: float, log: Path) -> Target:
    port = free_port()
    cmd = [
        *pin(cpus),
        sys.executable,
        str(HERE / "fake_upstream.py"),
        "--port",
        str(port),
        "--chunk-delay-ms",
        str(chunk_delay_ms),
    ]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    _wait_http(port, proc, "fake upstream", log)
    return Target("direct", port, proc)


def bench_config(upstream_port: int, path: Path) -> Path:
    """A catalogue whose three tiers all point at the fake upstream (so `auto` routing runs for real)."""
    provider = f"""providers:
  fake:
    kind: openai
    base_url: http://127.0.0.1:{upstream_port}/v1
"""
    models = "models:\n"
    for tier, price in (("budget", 1.5e-7), ("mid", 8e-7), ("frontier", 3e-6)):
        models += (
            f"  fake-{tier}:\n    provider: fake\n    upstream_model: fake-{tier}-1\n    tier: {tier}\n"
            f"    input_cost_per_token: {price:.10f}\n    output_cost_per_token: {price * 4:.10f}\n"
            f"    max_input_tokens: 128000\n    max_output_tokens: 4096\n"
        )
    tiers = "tiers:\n  budget: [fake-budget]\n  mid: [fake-mid]\n  frontier: [fake-frontier]\n"
    path.write_text("replace_catalogue: true\n" + provider + models + tiers)
    return path


BENCH_POLICY = """version: 1
# Every governance feature on, with limits far above what a benchmark reaches (nothing is refused).
defaults:
  pii: redact
  rpm: 100000000
  tpm: 100000000000
  max_cost_per_request_usd: 10
  cache: true
departments:
  bench:
    rpm: 100000000
    budgets: {daily_usd: 1000000000, monthly_usd: 10000000000}
applications:
  default:
    department: bench
    budgets: {daily_usd: 1000000000}
"""


def bench_policy(path: Path) -> Path:
    """A policy that switches on PII redaction, rate limits, a cost ceiling and budgets."""
    path.write_text(BENCH_POLICY)
    return path


def start_fastroute(
    cpus: str | None,
    env: dict[str, str],
    log: Path,
    name: str = "fastroute",
    *,
    wrapper: Sequence[str] = (),
    ready_timeout_s: float = 60.0,
) -> Target:
    """`fastroute serve` on a free port; `wrapper` runs it under another command (e.g. valgrind)."""
    port = free_port()
    full_env = {**env, "FASTROUTE_PORT": str(port), "FASTROUTE_HOST": "127.0.0.1"}
    full_env.setdefault("FASTROUTE_LOG_LEVEL", "warning")
    cmd = [*pin(cpus), *wrapper, sys.executable, "-m", "fastroute", "serve"]
    proc = subprocess.Popen(cmd, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO)
    _wait_http(port, proc, name, log, timeout_s=ready_timeout_s)
    return Target(name, port, proc, fastroute=True)


NGINX_CONF = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fastcgi;
  uwsgi_temp_path {tmp}/nginx-uwsgi;
  scgi_temp_path {tmp}/nginx-scgi;
  upstream fake {{ server 127.0.0.1:{upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


def start_nginx(cpus: str | None, upstream_port: int, tmp: Path) -> Target | None:
    """nginx as a plain reverse proxy (one worker), when installed: the peer to compare against."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        return None
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, upstream=upstream_port, port=port))
    log = tmp / "nginx.log"
    proc = subprocess.Popen(
        [*pin(cpus), binary, "-c", str(conf), "-p", str(tmp)], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    _wait_http(port, proc, "nginx", log)
    return Target("nginx", port, proc)


def start_bare_proxy(cpus: str | None, upstream_port: int, tmp: Path) -> Target:
    """aiohttp + fastroute's upstream client with no features (`bare_proxy.py`): the stack's own floor."""
    port = free_port()
    log = tmp / "bare-proxy.log"
    script = Path(__file__).with_name("bare_proxy.py")
    proc = subprocess.Popen(
        [*pin(cpus), sys.executable, str(script), str(port), str(upstream_port)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip
    _wait_http(port, proc, "aiohttp-proxy", log)
    return Target("aiohttp-proxy", port, proc)
