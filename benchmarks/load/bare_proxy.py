"""The floor under any gateway built on this stack: aiohttp + uvloop + orjson + fastroute's upstream
client, forwarding each chat request with no feature at all (no routing, policy, cache, ledger, metrics).

    python benchmarks/load/bare_proxy.py PORT UPSTREAM_PORT

`run.py --targets ...,aiohttp-proxy` runs it beside fastroute and nginx, so the report shows how much of
fastroute's cost per request is the stack itself and how much is fastroute's own work.
"""

from __future__ import annotations

import asyncio
import sys

import orjson
import uvloop
from aiohttp import web

from fastroute.providers.http import SessionPool
from fastroute.providers.wire import Timeouts

TIMEOUTS = Timeouts(connect_s=5.0, read_s=30.0, total_s=60.0)
JSON = {"Content-Type": "application/json"}


async def serve(port: int, upstream_port: int) -> None:
    base = f"http://127.0.0.1:{upstream_port}/v1"
    session = SessionPool(256).session_for(base)
    url = f"{base}/chat/completions"

    async def chat(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        body["model"] = "fake-budget-1"
        upstream = await session.request("POST", url, orjson.dumps(body), JSON, TIMEOUTS)
        if not body.get("stream"):
            data = orjson.loads(await upstream.read())
            upstream.release()
            return web.Response(body=orjson.dumps(data), content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        async for line in upstream.content:
            await resp.write(line)
        upstream.release()
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/healthz", lambda _: web.Response(text="ok"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), int(sys.argv[2])))
