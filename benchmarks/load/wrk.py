"""Cross-check of plain (non-streamed) throughput with wrk, a C load generator, when it is installed.

The Python driver shares its core with the fake upstream, which caps the "direct" figure; wrk needs far
less CPU per request, so its direct figure is closer to what the loopback path can do. wrk cannot tie a
response to its request, so correctness here is weaker than the driver's: status 200 and a body holding
an answer (`"Answer to n:`), counted per response in Lua. Each request carries its own nonce (a Lua counter
from `first_nonce`), as the driver's do, so no answer comes from the cache (before 2026-11-29 wrk repeated
one body and measured cache hits).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from driver import Workload

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local prefix, suffix = [==[%PREFIX%]==], [==[%SUFFIX%]==]
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; n = %FIRST% end
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, prefix .. n .. suffix)
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, "Answer to n:", 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format("WRK %d %d %.1f %.1f %.1f %.1f %d\\n", summary.requests, b,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), summary.duration, summary.errors.status))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(port: int, connections: int, duration_s: float, cpus: str | None, first_nonce: int) -> dict[str, Any]:
    """One wrk run against /v1/chat/completions; latencies in ms, RPS over wrk's own measured window.
    Nonces run from `first_nonce` + 1 up: give each run its own range, or repeated bodies hit the cache."""
    marker = 987_654_321
    prefix, _, suffix = Workload().body(marker).decode().partition(str(marker))
    script_text = LUA.replace("%PREFIX%", prefix).replace("%SUFFIX%", suffix).replace("%FIRST%", str(first_nonce))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script_text)
        script = f.name
    try:
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "-s", script,
               f"http://127.0.0.1:{port}/v1/chat/completions"]  # fmt: skip
        if cpus and shutil.which("taskset"):
            cmd = ["taskset", "-c", cpus, *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=duration_s + 60).stdout
    finally:
        Path(script).unlink(missing_ok=True)
    m = re.search(r"WRK (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", out)
    if m is None:
        return {"error": out[-500:]}
    requests, bad, p50, p90, p99, dur_us, _status = m.groups()
    seconds = float(dur_us) / 1e6
    return {
        "requests": int(requests),
        "bad": int(bad),
        "rps": int(requests) / seconds if seconds else 0.0,
        "p50_ms": float(p50) / 1000,
        "p90_ms": float(p90) / 1000,
        "p99_ms": float(p99) / 1000,
    }
