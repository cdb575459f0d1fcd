"""Every kind of bad input answers with an OpenAI-shaped error and the right 4xx, and the process lives on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import chat_body

pytestmark = pytest.mark.asyncio


def assert_openai_error(body: Any, code: str | None = None, param: str | None = None) -> None:
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in err["message"]
    if code is not None:
        assert err["code"] == code
    if param is not None:
        assert err["param"] == param


CASES: list[tuple[str, Any, int, str, str | None]] = [
    ("malformed json", b'{"model": "auto", "messages": [', 400, "invalid_json", None),
    ("empty body", b"", 400, "invalid_json", None),
    ("invalid utf-8", b'{"model": "\xff\xfe"}', 400, "invalid_json", None),
    ("not an object", b"[1, 2, 3]", 400, "invalid_request", None),
    ("missing model", {"messages": [{"role": "user", "content": "x"}]}, 400, "invalid_request", "model"),
    (
        "model wrong type",
        {"model": 42, "messages": [{"role": "user", "content": "x"}]},
        400,
        "invalid_request",
        "model",
    ),
    ("missing messages", {"model": "auto"}, 400, "invalid_request", "messages"),
    ("messages not a list", {"model": "auto", "messages": "hi"}, 400, "invalid_request", "messages"),
    ("empty messages", {"model": "auto", "messages": []}, 400, "invalid_request", "messages"),
    (
        "bad role",
        {"model": "auto", "messages": [{"role": "wizard", "content": "x"}]},
        400,
        "invalid_request",
        "messages[0].role",
    ),
    (
        "content wrong type",
        {"model": "auto", "messages": [{"role": "user", "content": 5}]},
        400,
        "invalid_request",
        "messages[0].content",
    ),
    ("stream wrong type", chat_body(stream="yes"), 400, "invalid_request", "stream"),
    ("max_tokens negative", chat_body(max_tokens=-3), 400, "invalid_request", "max_tokens"),
    ("max_tokens bool", chat_body(max_tokens=True), 400, "invalid_request", "max_tokens"),
    ("temperature out of range", chat_body(temperature=7), 400, "invalid_request", "temperature"),
    ("huge number", chat_body(max_tokens=10**30), 400, "invalid_request", "max_tokens"),
    ("unknown model", chat_body(model="gpt-17-ultra"), 404, "model_not_found", "model"),
    ("bad tier header value", None, 400, "invalid_request", "x-fastroute-tier"),
]


@pytest.mark.parametrize(("name", "payload", "status", "code", "param"), CASES, ids=[c[0] for c in CASES])
async def test_bad_request_is_answered_with_openai_error(
    gateway: Any, name: str, payload: Any, status: int, code: str, param: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if payload is None:
        payload, headers["x-fastroute-tier"] = chat_body(), "ultra"
    if isinstance(payload, bytes):
        resp = await gateway.post("/v1/chat/completions", data=payload, headers=headers)
    else:
        resp = await gateway.post("/v1/chat/completions", json=payload, headers=headers)
    assert resp.status == status
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["x-request-id"]
    assert_openai_error(await resp.json(), code, param)
    # The process is still serving.
    assert (await gateway.post("/v1/chat/completions", json=chat_body())).status == 200


async def test_oversized_body_is_413(make_gateway: Any) -> None:
    gateway = await make_gateway(FASTROUTE_MAX_BODY_BYTES="4096")
    resp = await gateway.post("/v1/chat/completions", json=chat_body("x" * 10_000))
    assert resp.status == 413
    assert_openai_error(await resp.json(), "payload_too_large")
    ok = await gateway.post("/v1/chat/completions", json=chat_body("small"))
    assert ok.status == 200


async def test_oversized_chunked_body_without_length_is_413(make_gateway: Any) -> None:
    gateway = await make_gateway(FASTROUTE_MAX_BODY_BYTES="4096")

    async def body() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    resp = await gateway.post("/v1/chat/completions", data=body(), headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert_openai_error(await resp.json(), "payload_too_large")


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"])
async def test_unsupported_content_type_is_415(gateway: Any, ctype: str) -> None:
    resp = await gateway.post("/v1/chat/completions", data=b'{"model":"auto"}', headers={"Content-Type": ctype})
    assert resp.status == 415
    assert_openai_error(await resp.json(), "unsupported_media_type")


async def test_unknown_path_and_wrong_method(gateway: Any) -> None:
    resp = await gateway.get("/v1/nothing-here")
    assert resp.status == 404
    assert_openai_error(await resp.json(), "not_found")
    resp = await gateway.get("/v1/chat/completions")
    assert resp.status == 405
    assert_openai_error(await resp.json(), "method_not_allowed")


async def test_context_window_exceeded_is_400(gateway: Any) -> None:
    resp = await gateway.post("/v1/chat/completions", json=chat_body("hi", model="sim-budget", max_tokens=500_000))
    assert resp.status == 400
    assert_openai_error(await resp.json(), "context_length_exceeded")
