"""A simulated LLM server speaking both OpenAI chat-completions and Anthropic Messages.

Deterministic text, realistic token counts, per-model latency; an optional fault hook lets tests inject
failures. Used by `fastroute demo` and by tests; it never leaves loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from fastroute.chat_request import message_text

_WORDS = (
    "the answer depends on context and the key idea is to consider each step carefully first we identify "
    "what is given then we apply the relevant rule and check the result against the constraints in short "
    "this approach is reliable efficient and easy to verify which makes it a sound choice here"
).split()


@dataclass(frozen=True, slots=True)
class SimulatedModel:
    """Latency and verbosity of one simulated model."""

    ttft_s: float = 0.0
    tokens_per_s: float = 0.0  # 0 = as fast as possible
    min_words: int = 12
    max_words: int = 60


@dataclass(slots=True)
class Fault:
    """What the simulator does instead of answering normally (tests only).

    kind: "status" (answer `status` with an error body), "delay" (sleep `delay_s` first, then answer),
    "cut" (stream `after_chunks` chunks then drop the connection), "malformed" (send a non-JSON body),
    "hang" (never answer), "reset" (drop the connection before answering).
    """

    kind: str
    status: int = 500
    delay_s: float = 0.0
    after_chunks: int = 0
    retry_after: str | None = None
    message: str = "simulated failure"


FaultHook = Callable[[str, dict[str, Any]], "Fault | None"]
# (upstream model id, prompt text, normal answer) -> the answer to send instead (tests: answer quality)
AnswerHook = Callable[[str, str, str], str]


@dataclass(slots=True)
class UpstreamStats:
    """What the simulator saw: tests read it to check what reached the upstream."""

    requests: int = 0
    completed: int = 0
    client_gone: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    keep_bodies: int = 200

    def record(self, body: dict[str, Any]) -> None:
        self.requests += 1
        self.bodies.append(body)
        if len(self.bodies) > self.keep_bodies:
            del self.bodies[0]


STATS_KEY = web.AppKey("simulator_stats", UpstreamStats)


def approx_tokens(text: str) -> int:
    """Rough cl100k-like count (about 4 characters a token) for simulated usage."""
    return max(1, (len(text) + 3) // 4) if text else 0


def answer_text(model: str, prompt: str, profile: SimulatedModel) -> str:
    """Deterministic answer: the same model and prompt always give the same text."""
    digest = hashlib.blake2b(f"{model}\x00{prompt}".encode(), digest_size=8).digest()
    seed = int.from_bytes(digest, "little")
    span = max(1, profile.max_words - profile.min_words)
    n = profile.min_words + min(span, seed % span + len(prompt) // 40)
    words = [_WORDS[(seed // (i + 1) + i * 7919) % len(_WORDS)] for i in range(n)]
    first = prompt.strip().splitlines()[0][:60] if prompt.strip() else "your question"
    return f"[{model}] On '{first}': " + " ".join(words) + "."


class Simulator:
    """Serves simulated completions for the models it knows (unknown models get a 404)."""

    def __init__(
        self,
        models: dict[str, SimulatedModel],
        fault_hook: FaultHook | None = None,
        answer_hook: AnswerHook | None = None,
    ) -> None:
        self.models = models
        self.fault_hook = fault_hook
        self.answer_hook = answer_hook
        self.stats = UpstreamStats()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app[STATS_KEY] = self.stats
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_get("/v1/models", self._list_models)
        return app

    async def _list_models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "owned_by": "simulator"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _prelude(self, request: web.Request, flavour: str) -> tuple[dict[str, Any], Fault | None]:
        body = orjson.loads(await request.read())
        self.stats.record(body)
        fault = self.fault_hook(flavour, body) if self.fault_hook else None
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.delay_s)
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(3600)
        if fault is not None and fault.kind == "reset" and request.transport is not None:
            request.transport.close()
        return body, fault

    def _error(self, fault: Fault, flavour: str) -> web.Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
        if flavour == "anthropic":
            err = {"type": "error", "error": {"type": "api_error", "message": fault.message}}
        else:
            err = {"error": {"message": fault.message, "type": "server_error", "param": None, "code": None}}
        return web.json_response(err, status=fault.status, headers=headers)

    async def _generate_whole(self, profile: SimulatedModel, completion_tokens: int) -> None:
        """Takes as long as the model would to write a whole (non-streamed) answer, and counts it."""
        gen_s = completion_tokens / profile.tokens_per_s if profile.tokens_per_s else 0.0
        await asyncio.sleep(profile.ttft_s + gen_s)
        self.stats.completed += 1

    def _profile(self, model: str) -> SimulatedModel | None:
        return self.models.get(model)

    def _answer(self, model: str, prompt: str, profile: SimulatedModel) -> str:
        text = answer_text(model, prompt, profile)
        return self.answer_hook(model, prompt, text) if self.answer_hook else text

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        body, fault = await self._prelude(request, "openai")
        if fault is not None and fault.kind in ("status", "reset"):
            return self._error(fault, "openai")
        model = str(body.get("model"))
        profile = self._profile(model)
        if profile is None:
            err = {
                "error": {
                    "message": f"model {model!r} not found",
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": "model_not_found",
                }
            }
            return web.json_response(err, status=404)
        prompt = "\n".join(message_text(m) for m in body.get("messages", []))
        text = self._answer(model, prompt, profile)
        p_tok, c_tok = approx_tokens(prompt), approx_tokens(text)
        cid = "chatcmpl-sim" + hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
        created = int(time.time())
        if fault is not None and fault.kind == "malformed":
            return web.Response(body=b"{not json", content_type="application/json")
        if not body.get("stream"):
            await self._generate_whole(profile, c_tok)
            return web.json_response(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": p_tok, "completion_tokens": c_tok, "total_tokens": p_tok + c_tok},
                }
            )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + orjson.dumps(data) + b"\n\n"

        pieces = _pieces(text)
        frames = [chunk({"role": "assistant", "content": ""})]
        frames += [chunk({"content": p}) for p in pieces]
        frames.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": p_tok, "completion_tokens": c_tok, "total_tokens": p_tok + c_tok}
            frames.append(
                b"data: "
                + orjson.dumps(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
                + b"\n\n"
            )
        frames.append(b"data: [DONE]\n\n")
        return await self._stream(request, frames, profile, fault)

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        body, fault = await self._prelude(request, "anthropic")
        if fault is not None and fault.kind in ("status", "reset"):
            return self._error(fault, "anthropic")
        model = str(body.get("model"))
        profile = self._profile(model)
        if profile is None:
            err = {"type": "error", "error": {"type": "not_found_error", "message": f"model: {model}"}}
            return web.json_response(err, status=404)
        if not isinstance(body.get("max_tokens"), int):
            err = {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: required"}}
            return web.json_response(err, status=400)
        system = body.get("system") or ""
        turns = [
            b.get("text", "") for m in body.get("messages", []) for b in m.get("content", []) if b.get("type") == "text"
        ]
        prompt = "\n".join([system, *turns]) if system else "\n".join(turns)
        text = self._answer(model, "\n".join(turns), profile)
        p_tok, c_tok = approx_tokens(prompt), approx_tokens(text)
        mid = "msg_sim" + hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
        if fault is not None and fault.kind == "malformed":
            return web.Response(body=b"{not json", content_type="application/json")
        if not body.get("stream"):
            await self._generate_whole(profile, c_tok)
            return web.json_response(
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": p_tok, "output_tokens": c_tok},
                }
            )

        def event(name: str, data: dict[str, Any]) -> bytes:
            return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"

        frames = [
            event(
                "message_start",
                {
                    "message": {
                        "id": mid,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "usage": {"input_tokens": p_tok, "output_tokens": 1},
                    }
                },
            ),
            event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            event("ping", {}),
        ]
        frames += [
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}})
            for p in _pieces(text)
        ]
        frames += [
            event("content_block_stop", {"index": 0}),
            event(
                "message_delta",
                {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": c_tok}},
            ),
            event("message_stop", {}),
        ]
        return await self._stream(request, frames, profile, fault)

    async def _stream(
        self, request: web.Request, frames: list[bytes], profile: SimulatedModel, fault: Fault | None
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        gap = 1.0 / profile.tokens_per_s if profile.tokens_per_s else 0.0
        try:
            if profile.ttft_s:
                await asyncio.sleep(profile.ttft_s)
            for i, frame in enumerate(frames):
                if fault is not None and fault.kind == "cut" and i >= fault.after_chunks:
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                await resp.write(frame)
                if gap and i:
                    await asyncio.sleep(gap)
            await resp.write_eof()
            self.stats.completed += 1
        except (ConnectionResetError, asyncio.CancelledError):
            self.stats.client_gone += 1
            raise
        return resp


def _pieces(text: str) -> list[str]:
    """Splits text into token-sized stream pieces (a word and its leading space)."""
    words = text.split(" ")
    return [words[0], *(" " + w for w in words[1:])]


DEMO_MODELS: dict[str, SimulatedModel] = {
    "sim-budget-1": SimulatedModel(ttft_s=0.03, tokens_per_s=400, min_words=15, max_words=60),
    "sim-mid-1": SimulatedModel(ttft_s=0.08, tokens_per_s=150, min_words=25, max_words=90),
    "sim-frontier-1": SimulatedModel(ttft_s=0.25, tokens_per_s=80, min_words=40, max_words=140),
}
