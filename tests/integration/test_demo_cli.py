"""Acceptance: `fastroute demo` starts on its embedded defaults and the `openai` client gets a completion
and a streamed completion through it, with fastroute's headers. Runs the real command in a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import openai
import pytest

HEADERS = ("x-request-id", "x-fastroute-model", "x-fastroute-tier", "x-fastroute-cost-usd", "x-fastroute-overhead-ms")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo(tmp_path: object) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "FASTROUTE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastroute", "demo", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    banner = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        banner.append(line)
        if "fastroute demo is running at" in line:
            break
        if proc.poll() is not None:
            pytest.fail("demo exited early:\n" + "".join(banner) + proc.stdout.read())
    else:
        proc.kill()
        pytest.fail("demo did not start within 60 s:\n" + "".join(banner))
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0  # graceful shutdown exits 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_openai_client_through_the_demo(demo: str) -> None:
    client = openai.OpenAI(base_url=f"{demo}/v1", api_key="demo", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "What is the capital of France?"}]
    )
    assert raw.parse().choices[0].message.content
    for h in HEADERS:
        assert raw.headers.get(h), h
    with client.chat.completions.with_streaming_response.create(
        model="auto", stream=True, messages=[{"role": "user", "content": "Prove that sqrt(2) is irrational."}]
    ) as resp:
        text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
        for h in HEADERS:
            assert resp.headers.get(h), h
    assert len(text) > 20
