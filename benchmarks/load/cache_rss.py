"""Peak RSS of a gateway process holding a full semantic cache (default 100,000 entries).

    python benchmarks/load/cache_rss.py [--entries 100000] [--env FASTROUTE_X=...]

Builds the app exactly as `fastroute serve` does (`create_app` from FASTROUTE_* settings), starts its
stages, then fills the response cache through `SemanticCache.store` with distinct realistic entries
(conversation text ~250-400 chars, answer body ~0.9 KB, a real embedding from the gateway's analyzer;
raise FASTROUTE_CACHE_MAX_BYTES if the byte bound evicts before the entry count is reached),
and reports VmRSS / VmHWM from /proc/self/status before and after, plus lookup latency on the full cache.
Uses the app's own cache when a stage carries one, else a `SemanticCache` built from `CacheSettings`.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from driver import PROMPTS, SYSTEM
from run import parse_env

from fastroute.cache import CacheScope, SemanticCache
from fastroute.cache.settings import CacheSettings
from fastroute.prompt import conversation_text
from fastroute.server.app import create_app
from fastroute.server.keys import GATEWAY
from fastroute.settings import Settings

WORDS = (
    "order invoice refund delivery password account printer kernel python tensor lisbon museum river "
    "contract lease tax visa recipe bread garden battery engine ticket flight hotel exam theorem"
).split()


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def find_cache(app: Any) -> SemanticCache | None:
    for stage in app[GATEWAY].stages:
        for value in vars(stage).values() if hasattr(stage, "__dict__") else ():
            if isinstance(value, SemanticCache):
                return value
    return None


def answer(i: int, rng: random.Random) -> dict[str, Any]:
    text = " ".join(rng.choice(WORDS) for _ in range(110)) + f" (answer {i})"
    return {
        "id": f"chatcmpl-{i}", "object": "chat.completion", "created": 1_700_000_000, "model": "fake-budget-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 60, "completion_tokens": 140, "total_tokens": 200},
    }  # fmt: skip


async def measure(args: argparse.Namespace, tmp: Path) -> None:
    env = {**os.environ, **parse_env(args.env)}
    env.setdefault("FASTROUTE_DATA_DIR", str(tmp / "data"))
    env.setdefault("FASTROUTE_REQUEST_LOG", "off")
    settings = Settings.from_env(env)
    rss0 = status_mb("VmRSS")
    app = create_app(settings, secrets={})
    gateway = app[GATEWAY]
    for stage in gateway.stages:
        await stage.start()
    cache = find_cache(app)
    source = "the app's cache stage"
    if cache is None:
        cache_settings = CacheSettings.from_env(env) if hasattr(CacheSettings, "from_env") else CacheSettings()
        dim = getattr(gateway.analyzer, "embedding_dim", 256)
        cache = SemanticCache(cache_settings, None, dim)
        source = "a SemanticCache built from CacheSettings (no cache stage in build_stages yet)"
    gc.collect()
    rss_app = status_mb("VmRSS")
    rng = random.Random(7)
    t0 = time.perf_counter()
    texts = []
    for i in range(args.entries):
        topic = " ".join(rng.choice(WORDS) for _ in range(6))
        user = f"{PROMPTS[i % len(PROMPTS)]} Also: {topic}, case {i}."
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        if args.multi_turn:  # an earlier exchange of its own: every entry is alone in its partition
            messages[1:1] = [
                {"role": "user", "content": f"Earlier question {i} about {topic}."},
                {"role": "assistant", "content": f"Earlier answer {i}."},
            ]
        text = conversation_text(messages)
        analysis = gateway.analyzer.analyze(text)
        cache.store(CacheScope(tenant=f"app{i % 4}"), analysis, "fp", text, answer(i, rng))
        if i % 1000 == 0:
            texts.append((i, text, analysis))
        if i % 64 == 0:
            await asyncio.sleep(0)  # as between requests: lets the cache's background indexer run
    while getattr(cache, "unindexed", 0):  # noqa: ASYNC110 (polling a plain counter)
        await asyncio.sleep(0.01)
    fill_s = time.perf_counter() - t0
    gc.collect()
    rss_full, hwm = status_mb("VmRSS"), status_mb("VmHWM")
    trimmed = status_mb("VmRSS") if ctypes.CDLL(None).malloc_trim(0) >= 0 else float("nan")
    lat, found = [], 0
    for i, text, analysis in texts:
        t = time.perf_counter()
        hit = cache.lookup(CacheScope(tenant=f"app{i % 4}"), analysis, "fp", text)
        lat.append(time.perf_counter() - t)
        found += hit is not None
    lat.sort()
    for stage in reversed(gateway.stages):
        await stage.close()
    await app.cleanup()
    print(f"cache: {source}")
    print(f"entries stored: {len(cache)} of {args.entries} (cache bytes_used {cache.bytes_used / 2**20:.0f} MiB), "
          f"filled in {fill_s:.1f}s")  # fmt: skip
    print(f"RSS: interpreter {rss0:.0f} MB -> app built {rss_app:.0f} MB -> with cache {rss_full:.0f} MB; "
          f"peak (VmHWM) {hwm:.0f} MB")  # fmt: skip
    print(f"  (diagnostic: {trimmed:.0f} MB once malloc_trim returned free heap pages to the OS)")
    parts = cache.memory() if hasattr(cache, "memory") else {}
    print("  cache.memory(): " + ", ".join(f"{k} {v / 2**20:.1f} MiB" if k.endswith("bytes") else f"{k} {v}"
                                          for k, v in parts.items()))  # fmt: skip
    p50, top = lat[len(lat) // 2] * 1e6, lat[-1] * 1e6
    print(f"lookup of stored prompts on the full cache: p50 {p50:.0f} us, max {top:.0f} us; "
          f"found {found} of {len(lat)} (the rest were evicted by the cache's bounds)")  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for fastroute (repeatable)")
    parser.add_argument(
        "--multi-turn", action="store_true",
        help="each entry continues a conversation of its own (its own semantic partition and index)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fastroute-cache-rss-") as tmp:
        uvloop.run(measure(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
