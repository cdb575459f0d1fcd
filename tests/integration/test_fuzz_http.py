"""Hostile input against the real server (the production runner on a socket), driven by the OpenAPI description.

Wrong types, huge numbers, deep nesting, invalid UTF-8, random bytes and content types, hostile and gigantic
headers, unknown paths and methods, slow bodies and slow headers. The contract: never a 5xx, every error is
an OpenAI-shaped JSON body, and the server keeps answering. Bounded to ~1,200 cases (~25 s) for CI.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastroute.catalogue import Catalogue
from fastroute.reliability.protocol_errors import JsonErrorAppRunner
from fastroute.server.app import create_app
from fastroute.settings import Settings
from tests.fakes.openapi_strategies import ANY_JSON, HUGE_NUMBERS, SchemaStrategies, load_openapi
from tests.integration.test_bad_input import assert_openai_error

pytestmark = pytest.mark.asyncio
SPEC = load_openapi()
SCHEMAS = SchemaStrategies(SPEC)
CHAT = SCHEMAS.resolve({"$ref": "#/components/schemas/ChatCompletionRequest"})


def fuzz(examples: int) -> settings:
    """Bounded runs; the server fixture is shared by a test's examples on purpose (it is the system under test)."""
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
async def server(catalogue: Catalogue, settings_env: dict[str, str]) -> AsyncIterator[int]:
    """The gateway on a loopback port behind the production runner; yields the port."""
    env = {**settings_env, "FASTROUTE_BODY_TIMEOUT_S": "0.5", "FASTROUTE_MAX_BODY_BYTES": "262144"}
    app = create_app(Settings.from_env(env), catalogue=catalogue)
    runner = JsonErrorAppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def raw(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Sends bytes as-is, reads until the server closes; returns (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head_raw, _, rest = data.partition(b"\r\n\r\n")
    lines = head_raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, rest


def request_head(method: str, path: str, headers: list[tuple[bytes, bytes]], body_len: int | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: fuzz", b"Connection: close"]
    lines += [k + b": " + v for k, v in headers]
    if body_len is not None:
        lines.append(b"Content-Length: " + str(body_len).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def post(port: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None,
               path: str = "/v1/chat/completions") -> int:
    hdrs = headers if headers is not None else [(b"Content-Type", b"application/json")]
    status, resp_headers, rest = await raw(port, request_head("POST", path, hdrs, len(body)), body)
    check(status, resp_headers, rest)
    return status


def check(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status < 500, (status, body[:300])
    if status >= 400:
        assert headers.get("content-type", "").startswith("application/json"), headers
        assert_openai_error(orjson.loads(body))


MODELS = st.sampled_from(["auto", "sim-budget", "sim-mid", "sim-frontier", "sim-frontier-openai"]) | st.text(
    max_size=12
)


@st.composite
def chat_bodies(draw: Any) -> dict[str, Any]:
    body: dict[str, Any] = draw(SCHEMAS.valid(CHAT))
    body["model"] = draw(MODELS)
    return body


@fuzz(100)
@given(body=chat_bodies())
async def test_schema_valid_bodies_never_5xx(server: int, body: dict[str, Any]) -> None:
    await post(server, orjson.dumps(body))


@st.composite
def wrong_types(draw: Any) -> bytes:
    body = draw(chat_bodies())
    target = draw(st.sampled_from(["top", "message", "part"]))
    value = draw(ANY_JSON)
    if target == "top":
        body[draw(st.sampled_from([*CHAT["properties"], "messages", "model"]))] = value
    elif target == "message":
        body["messages"][0][draw(st.sampled_from(["role", "content", "name"]))] = value
    else:
        body["messages"][0]["content"] = [{"type": "text", "text": value}, value]
    return orjson.dumps(body)


@fuzz(200)
@given(payload=wrong_types())
async def test_wrong_types_are_4xx(server: int, payload: bytes) -> None:
    await post(server, payload)


@fuzz(100)
@given(field=st.sampled_from(["max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "model",
                              "stream", "messages"]), number=HUGE_NUMBERS)
async def test_huge_numbers_are_4xx(server: int, field: str, number: str) -> None:
    body = b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "' + field.encode() + b'": '
    status = await post(server, body + number.encode() + b"}")
    assert status in (400, 413) or number in ("1e-400", "0.0000000000001", "-0")  # tiny ones are valid temperatures


@fuzz(50)
@given(depth=st.integers(10, 200_000), kind=st.sampled_from(["[]", "{}"]), where=st.sampled_from(["top", "content"]))
async def test_deep_nesting_is_4xx(server: int, depth: int, kind: str, where: str) -> None:
    opener, closer = (b"[", b"]") if kind == "[]" else (b'{"a":', b"}")
    nested = opener * depth + b"1" + closer * depth
    if where == "top":
        body = nested
    else:
        body = b'{"model": "auto", "messages": [{"role": "user", "content": ' + nested + b"}]}"
    assert await post(server, body) in (400, 413)


@st.composite
def broken_utf8(draw: Any) -> bytes:
    body = bytearray(orjson.dumps(draw(chat_bodies())))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80",
                                    b"\\ud800", b"\\udfff\\ud800", b"\x00", b"\xc0\xaf"]))
        body[at:at] = bad
    return bytes(body)


@fuzz(150)
@given(payload=broken_utf8())
async def test_invalid_utf8_never_5xx(server: int, payload: bytes) -> None:
    await post(server, payload)


CONTENT_TYPES = st.sampled_from([b"application/json", b"text/plain", b"application/x-www-form-urlencoded",
                                 b"multipart/form-data; boundary=x", b"application/json; charset=latin-1",
                                 b"application/vnd.api+json", b"\xff\xfe", b""])


@fuzz(250)
@given(payload=st.binary(max_size=2048), ctype=CONTENT_TYPES)
async def test_random_bytes_and_content_types_are_4xx(server: int, payload: bytes, ctype: bytes) -> None:
    status = await post(server, payload, [(b"Content-Type", ctype)] if ctype else [])
    assert status < 500


HEADER_NAMES = st.sampled_from([b"x-fastroute-tier", b"x-fastroute-max-tier", b"x-fastroute-latency", b"x-request-id",
                                b"Authorization", b"Content-Type", b"Accept-Encoding", b"Transfer-Encoding",
                                b"Content-Encoding", b"Expect"])
HEADER_VALUES = st.binary(max_size=64).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")) | st.sampled_from(
    [b"frontier", b"REALTIME", b" batch ", b"gzip", b"chunked", b"100-continue", b"\xc3\xa9t\xc3\xa9", b"a" * 9000]
)


@fuzz(150)
@given(extra=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4), body=chat_bodies())
async def test_hostile_headers_never_5xx(server: int, extra: list[tuple[bytes, bytes]], body: dict[str, Any]) -> None:
    headers = [(b"Content-Type", b"application/json"), *extra]
    if any(k == b"Transfer-Encoding" for k, _ in extra):
        return  # a Content-Length beside a Transfer-Encoding is a smuggling attempt: checked below on its own
    await post(server, orjson.dumps(body), headers)


@pytest.mark.parametrize("size", [9_000, 70_000, 1_000_000])
@pytest.mark.parametrize("shape", ["one huge header", "many headers", "huge request line"])
async def test_gigantic_headers_are_a_json_4xx(server: int, size: int, shape: str) -> None:
    if shape == "one huge header":
        head = request_head("POST", "/v1/chat/completions", [(b"x-big", b"a" * size)], 2)
    elif shape == "many headers":
        head = request_head("POST", "/v1/chat/completions", [(b"x-h%d" % i, b"v" * 40) for i in range(size // 44)], 2)
    else:
        head = request_head("GET", "/v1/models?" + "q" * size, [], None)
    try:
        status, headers, body = await raw(server, head, b"{}")
    except (ConnectionResetError, BrokenPipeError):
        # The server answers 400 after 8 KB and closes; with ~1 MB still unread the kernel resets the
        # connection and the client may never see the answer. Refusing is all that can be asked here.
        assert size >= 1_000_000
    else:
        assert 400 <= status < 500
        check(status, headers, body)
    assert (await raw(server, request_head("GET", "/healthz", [], None)))[0] == 200


async def test_request_smuggling_shapes_are_a_json_4xx(server: int) -> None:
    both = request_head("POST", "/v1/chat/completions", [(b"Transfer-Encoding", b"chunked")], 5)
    status, headers, body = await raw(server, both, b"0\r\n\r\n")
    check(status, headers, body)
    assert status == 400


@fuzz(150)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
       path=st.sampled_from(list(SPEC["paths"])) | st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                                           max_size=30).map(lambda p: "/" + p.replace("#", "")))
async def test_any_method_on_any_path_is_answered_without_5xx(server: int, method: str, path: str) -> None:
    status, headers, body = await raw(server, request_head(method, path, [], 0))
    check(status, headers, body)


async def test_slow_bodies_get_408_and_do_not_block_others(server: int) -> None:
    async def slow_sender() -> tuple[int, dict[str, str], bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server)
        head = request_head("POST", "/v1/chat/completions", [(b"Content-Type", b"application/json")], 1000)
        writer.write(head + b'{"model": ')
        try:
            for _ in range(100):  # a byte every 50 ms (the whole body would take ~50 s) until an answer comes
                try:
                    head_raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.05)
                    break
                except TimeoutError:
                    writer.write(b" ")
                    await writer.drain()
            else:
                raise AssertionError("no answer to a slow body")
            lines = head_raw.decode("latin-1").split("\r\n")
            hdrs = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            rest = await reader.readexactly(int(hdrs["content-length"]))
        finally:
            writer.close()
        return int(lines[0].split()[1]), hdrs, rest

    loop = asyncio.get_running_loop()
    slow = [asyncio.create_task(slow_sender()) for _ in range(20)]
    await asyncio.sleep(0.1)
    t0 = loop.time()
    body = orjson.dumps({"model": "sim-budget", "messages": [{"role": "user", "content": "hi"}]})
    assert await post(server, body) == 200  # served while the slow senders hold their connections
    assert loop.time() - t0 < 1.0
    for status, headers, rest in await asyncio.gather(*slow):
        assert status == 408
        check(status, headers, rest)
        assert orjson.loads(rest)["error"]["code"] == "request_timeout"


async def test_slow_headers_do_not_block_others(server: int) -> None:
    socks = []
    for _ in range(50):  # slowloris: connections that never finish their headers
        s = socket.create_connection(("127.0.0.1", server))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-a: ")
        socks.append(s)
    try:
        body = orjson.dumps({"model": "sim-budget", "messages": [{"role": "user", "content": "hi"}]})
        assert await post(server, body) == 200
    finally:
        for s in socks:
            s.close()
