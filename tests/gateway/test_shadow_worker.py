"""The shadow mirrors' worker process: sends, compares as inline would, bounded, restarted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator

import pytest
from starlette.types import Receive, Scope, Send

from gateway.shadow_worker import (
    STATUS_FIELD,
    WORKER_NICE,
    Answer,
    Job,
    MirrorWorker,
    WorkerConfig,
    WorkerFull,
    compare_answers,
)
from shared_schemas.comparators import COMPARATORS
from tests.gateway.upstreams import EchoUpstream, ThreadServer, serve_lifespan, serving

OP = "complexity_calculate_adjustment"
GENERATE = "analysis_generate"  # non-deterministic: noise samples are taken for it
BODY = b'{"pre_level": 3, "actual_level": 4}'


def _json(**fields: object) -> Answer:
    return Answer(200, "application/json", json.dumps(fields).encode())


PRIMARY = _json(multiplier=1.15, direction="underestimated", request_id="a")
CANDIDATE = _json(multiplier=2.15, direction="underestimated", request_id="b")


class Fixed:
    """An upstream that answers every request with one answer."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", self.answer.media_type.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.answer.content})


@pytest.fixture
def candidate() -> Iterator[ThreadServer]:
    with serving(Fixed(CANDIDATE)) as server:
        yield server


def _worker(
    candidate_url: str, primary_url: str = "", queue_limit: int = 8, max_inflight: int = 8
) -> MirrorWorker:
    config = WorkerConfig(
        candidate_url=candidate_url, primary_url=primary_url or candidate_url,
        connect_timeout_s=3, timeout_s=30, capture_bytes=1 << 20, max_inflight=max_inflight,
        keepalive_s=4,
    )  # fmt: skip
    return MirrorWorker(config, queue_limit)


def _job(
    job_id: int, primary: Answer, target: str = "/x", op: str = OP, noise: bool = False
) -> Job:
    return Job(job_id, op, "POST", target, [(b"x-shadow", b"1")], BODY, primary, noise)


def _worker_pid(worker: MirrorWorker) -> int:
    session = worker._session  # the process is the thing under test here
    assert session is not None
    return session.process.pid


async def test_the_worker_finds_what_an_inline_comparison_finds(candidate: ThreadServer) -> None:
    worker = _worker(candidate.url)
    try:
        primaries = [
            PRIMARY,
            CANDIDATE,
            Answer(503, "application/json", b"{}"),
            Answer(200, "application/json", b"not json"),
        ]
        jobs = [worker.submit(_job(i, primary)) for i, primary in enumerate(primaries)]
        results = await asyncio.wait_for(asyncio.gather(*jobs), timeout=30)
        assert [r.diffs for r in results] == [
            compare_answers(COMPARATORS[OP], primary, CANDIDATE, BODY) for primary in primaries
        ]
        assert [d.pattern for d in results[0].diffs] == ["multiplier"]
        assert results[1].diffs == []
        assert results[2].diffs[0].pattern == STATUS_FIELD
        assert all(r.candidate_status == 200 and r.error is None for r in results)
        # a separate process, at a lower CPU priority than the gateway
        pid = _worker_pid(worker)
        assert pid != os.getpid()
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + WORKER_NICE)
    finally:
        await worker.aclose()
    assert worker.unsettled == 0


async def test_the_primarys_own_variation_is_not_counted(candidate: ThreadServer) -> None:
    """A noise job is sent to the primary again: the field it varies in is left out."""
    again = _json(multiplier=3.15, direction="underestimated", request_id="c")
    with serving(Fixed(again)) as primary:
        worker = _worker(candidate.url, primary.url)
        try:
            noisy = await asyncio.wait_for(
                worker.submit(_job(1, PRIMARY, op=GENERATE, noise=True)), timeout=30
            )
            assert noisy.noise is not None
            assert [d.pattern for d in noisy.noise.diffs] == ["multiplier"]
            assert noisy.diffs == []  # the candidate differs only where the primary does
            later = await asyncio.wait_for(worker.submit(_job(2, PRIMARY, op=GENERATE)), 30)
            assert later.noise is None and later.diffs == []
        finally:
            await worker.aclose()


async def test_a_dead_candidate_is_the_jobs_error(dead_url: str) -> None:
    worker = _worker(dead_url)
    try:
        result = await asyncio.wait_for(worker.submit(_job(1, PRIMARY)), timeout=30)
        assert result.error is not None and "ConnectFailed" in result.error
        assert result.candidate_status is None
    finally:
        await worker.aclose()


async def test_a_full_queue_refuses_at_once(candidate: ThreadServer) -> None:
    worker = _worker(candidate.url, queue_limit=2)
    try:
        waiting = [worker.submit(_job(i, PRIMARY)) for i in range(2)]
        with pytest.raises(WorkerFull):
            worker.submit(_job(2, PRIMARY))
        await asyncio.wait_for(asyncio.gather(*waiting), timeout=30)
        assert worker.unsettled == 0
        assert (await asyncio.wait_for(worker.submit(_job(3, CANDIDATE)), 30)).diffs == []
    finally:
        await worker.aclose()


async def test_mirrors_beyond_the_bound_are_dropped_not_queued() -> None:
    echo = EchoUpstream("candidate")
    with serving(echo) as server:
        worker = _worker(server.url, max_inflight=1)
        try:
            held = worker.submit(_job(1, PRIMARY, target="/x?sleep=1"))
            beyond = await asyncio.wait_for(worker.submit(_job(2, PRIMARY)), timeout=30)
            assert beyond.dropped and beyond.candidate_status is None
            assert (await asyncio.wait_for(held, timeout=30)).candidate_status == 200
            assert echo.state.requests == 1  # the dropped one was never sent
            after = await asyncio.wait_for(worker.submit(_job(3, PRIMARY)), timeout=30)
            assert not after.dropped and echo.state.requests == 2
        finally:
            await worker.aclose()


@pytest.mark.timeout(60)
async def test_a_dead_worker_fails_its_mirrors_and_a_new_one_starts() -> None:
    echo = EchoUpstream("candidate")
    with serving(echo) as server:
        worker = _worker(server.url)
        try:
            await asyncio.wait_for(worker.submit(_job(1, PRIMARY)), timeout=30)
            first = _worker_pid(worker)
            lost = worker.submit(_job(2, PRIMARY, target="/x?sleep=20"))  # held upstream
            for _ in range(200):
                if echo.state.requests == 2:
                    break
                await asyncio.sleep(0.05)
            os.kill(first, signal.SIGKILL)
            with pytest.raises(RuntimeError, match="worker exited"):
                await asyncio.wait_for(lost, timeout=30)
            again = await asyncio.wait_for(worker.submit(_job(3, PRIMARY)), timeout=30)
            assert again.candidate_status == 200
            assert _worker_pid(worker) != first
        finally:
            await worker.aclose()
