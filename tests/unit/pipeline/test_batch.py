"""`Batched`: steps run one at a time over a batch, in order per request; failures end a request or are logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fastroute.chat_request import parse_chat_request
from fastroute.pipeline import RequestContext, Stage
from fastroute.pipeline.batch import Batched, Step


def make_ctx(rid: str) -> RequestContext:
    chat = parse_chat_request({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    return RequestContext(request_id=rid, headers={}, chat=chat)


def finisher(*stages: Stage) -> Batched:
    return Batched([Step(f"stage {s.name}", s, "on_finish", s.awaits_io) for s in stages], failures="log")


def preparer(*stages: Stage) -> Batched:
    return Batched([Step(f"stage {s.name}", s, "on_finish", s.awaits_io) for s in stages], failures="end")


class Recorder(Stage):
    def __init__(self, name: str, log: list[tuple[str, str]], *, fail_on: str = "", wait_s: float = 0.0) -> None:
        self.name = name
        self.log = log
        self.fail_on = fail_on
        self.wait_s = wait_s

    async def on_finish(self, ctx: RequestContext) -> None:
        if self.wait_s:
            await asyncio.sleep(self.wait_s)
        if ctx.request_id == self.fail_on:
            raise RuntimeError("boom")
        self.log.append((self.name, ctx.request_id))


async def test_requests_ending_together_run_stage_by_stage_in_order() -> None:
    log: list[tuple[str, str]] = []
    batch = finisher(Recorder("a", log), Recorder("b", log))
    await asyncio.gather(*(batch.run(make_ctx(r)) for r in ("r1", "r2", "r3")))
    # one batch: stage a for every request, then stage b; each request sees a before b
    assert log == [("a", "r1"), ("a", "r2"), ("a", "r3"), ("b", "r1"), ("b", "r2"), ("b", "r3")]


async def test_finish_returns_only_after_its_own_hooks_ran() -> None:
    log: list[tuple[str, str]] = []
    batch = finisher(Recorder("slow", log, wait_s=0.01), Recorder("last", log))
    await batch.run(make_ctx("r1"))
    assert log == [("slow", "r1"), ("last", "r1")]
    await batch.run(make_ctx("r2"))  # a later request gets a new batch
    assert log[-2:] == [("slow", "r2"), ("last", "r2")]


async def test_a_failing_hook_is_logged_and_the_rest_still_run(caplog: pytest.LogCaptureFixture) -> None:
    log: list[tuple[str, str]] = []
    batch = finisher(Recorder("a", log, fail_on="r1"), Recorder("b", log))
    with caplog.at_level(logging.ERROR, logger="fastroute.pipeline"):
        await asyncio.gather(batch.run(make_ctx("r1")), batch.run(make_ctx("r2")))
    assert log == [("a", "r2"), ("b", "r1"), ("b", "r2")]
    assert "stage a failed for request r1" in caplog.text


async def test_stages_that_wait_on_io_run_concurrently_over_a_batch() -> None:
    log: list[tuple[str, str]] = []
    remote = Recorder("remote", log, wait_s=0.05, fail_on="r2")
    remote.awaits_io = True
    batch = finisher(remote, Recorder("after", log))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.gather(*(batch.run(make_ctx(f"r{i}")) for i in range(8)))
    # one after another would take 8 x 50 ms
    assert loop.time() - t0 < 0.3
    assert ("remote", "r2") not in log and len([e for e in log if e[0] == "after"]) == 8


async def test_a_cancelled_waiter_still_gets_its_bookkeeping() -> None:
    log: list[tuple[str, str]] = []
    batch = finisher(Recorder("slow", log, wait_s=0.02))
    waiter = asyncio.ensure_future(batch.run(make_ctx("gone")))
    await asyncio.sleep(0)
    waiter.cancel()
    await batch.run(make_ctx("next"))
    await batch.wait_idle()
    assert ("slow", "gone") in log and ("slow", "next") in log


async def test_wait_idle_waits_for_requests_in_flight() -> None:
    log: list[tuple[str, str]] = []
    batch = finisher(Recorder("slow", log, wait_s=0.02))
    pending = [asyncio.ensure_future(batch.run(make_ctx(f"r{i}"))) for i in range(3)]
    await asyncio.sleep(0)
    await batch.wait_idle()
    assert sorted(r for _, r in log) == ["r0", "r1", "r2"]
    await asyncio.gather(*pending)


async def test_end_mode_raises_for_the_failed_request_only_and_skips_its_later_steps() -> None:
    log: list[tuple[str, str]] = []
    batch = preparer(Recorder("a", log, fail_on="r2"), Recorder("b", log))
    results = await asyncio.gather(*(batch.run(make_ctx(r)) for r in ("r1", "r2", "r3")), return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], RuntimeError)
    assert log == [("a", "r1"), ("a", "r3"), ("b", "r1"), ("b", "r3")]


async def test_end_mode_drops_a_request_whose_handler_was_cancelled() -> None:
    log: list[tuple[str, str]] = []
    batch = preparer(Recorder("slow", log, wait_s=0.02), Recorder("after", log))
    gone = asyncio.ensure_future(batch.run(make_ctx("gone")))
    kept = asyncio.ensure_future(batch.run(make_ctx("kept")))
    await asyncio.sleep(0.005)  # both are inside the first step
    gone.cancel()
    await kept
    assert ("after", "kept") in log and ("after", "gone") not in log


async def test_end_mode_concurrent_step_failure_reaches_its_request() -> None:
    log: list[tuple[str, str]] = []
    remote = Recorder("remote", log, wait_s=0.01, fail_on="r1")
    remote.awaits_io = True
    batch = preparer(remote, Recorder("after", log))
    results = await asyncio.gather(*(batch.run(make_ctx(f"r{i}")) for i in range(3)), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType", "RuntimeError", "NoneType"]
    assert sorted(r for s, r in log if s == "after") == ["r0", "r2"]


class TaskRecorder(Stage):
    name = "task"

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[object] | None] = []

    async def on_finish(self, ctx: RequestContext) -> None:
        self.tasks.append(asyncio.current_task())


async def test_alone_runs_in_the_callers_task_and_keeps_failure_modes(caplog: pytest.LogCaptureFixture) -> None:
    recorder = TaskRecorder()
    await finisher(recorder).run(make_ctx("r1"), alone=True)
    assert recorder.tasks == [asyncio.current_task()]  # no batch task: no extra turn of the loop
    await finisher(recorder).run(make_ctx("r2"))
    assert recorder.tasks[-1] is not asyncio.current_task()
    log: list[tuple[str, str]] = []
    with pytest.raises(RuntimeError):
        await preparer(Recorder("a", log, fail_on="r3"), Recorder("b", log)).run(make_ctx("r3"), alone=True)
    assert log == []
    with caplog.at_level(logging.ERROR, logger="fastroute.pipeline"):
        await finisher(Recorder("a", log, fail_on="r4"), Recorder("b", log)).run(make_ctx("r4"), alone=True)
    assert log == [("b", "r4")] and "stage a failed for request r4" in caplog.text


async def test_alone_joins_a_batch_already_under_way() -> None:
    log: list[tuple[str, str]] = []
    batch = finisher(Recorder("slow", log, wait_s=0.02), Recorder("after", log))
    first = asyncio.ensure_future(batch.run(make_ctx("r1")))
    await asyncio.sleep(0.005)
    await batch.run(make_ctx("r2"), alone=True)  # queued behind r1's batch, not run beside it
    await first
    assert log == [("slow", "r1"), ("after", "r1"), ("slow", "r2"), ("after", "r2")]
