"""The shadow comparisons' worker process: same answers as comparing inline, bounded, restarted."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest

from gateway.shadow_worker import (
    STATUS_FIELD,
    WORKER_NICE,
    Answer,
    CompareWorker,
    WorkerFull,
    compare_answers,
)
from shared_schemas.comparators import COMPARATORS

OP = "complexity_calculate_adjustment"
BODY = b'{"pre_level": 3, "actual_level": 4}'


def _json(**fields: object) -> Answer:
    return Answer(200, "application/json", json.dumps(fields).encode())


PRIMARY = _json(multiplier=1.15, direction="underestimated", request_id="a")
CANDIDATE = _json(multiplier=2.15, direction="underestimated", request_id="b")


def _worker_pid(worker: CompareWorker) -> int:
    session = worker._session  # the process is the thing under test here
    assert session is not None
    return session.process.pid


async def test_the_worker_finds_what_an_inline_comparison_finds() -> None:
    worker = CompareWorker(queue_limit=8)
    try:
        cases = [
            (PRIMARY, CANDIDATE),
            (PRIMARY, PRIMARY),
            (PRIMARY, Answer(503, "application/json", b"{}")),
            (PRIMARY, Answer(200, "application/json", b"not json")),
        ]
        found = await asyncio.gather(*(worker.compare(OP, a, b, BODY) for a, b in cases))
        assert found == [compare_answers(COMPARATORS[OP], a, b, BODY) for a, b in cases]
        assert [d.pattern for d in found[0]] == ["multiplier"]
        assert found[1] == []
        assert found[2][0].pattern == STATUS_FIELD
        # a separate process, at a lower CPU priority than the gateway
        pid = _worker_pid(worker)
        assert pid != os.getpid()
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + WORKER_NICE)
    finally:
        await worker.aclose()
    assert worker.queued == 0


async def test_a_full_queue_refuses_at_once() -> None:
    worker = CompareWorker(queue_limit=2)
    try:
        waiting = [worker.compare(OP, PRIMARY, CANDIDATE, BODY) for _ in range(2)]
        with pytest.raises(WorkerFull):
            worker.compare(OP, PRIMARY, CANDIDATE, BODY)
        await asyncio.gather(*waiting)
        await asyncio.sleep(0)  # the done callbacks free the queue
        assert worker.queued == 0
        assert await worker.compare(OP, PRIMARY, PRIMARY, BODY) == []
    finally:
        await worker.aclose()


@pytest.mark.timeout(60)
async def test_a_dead_worker_fails_its_comparisons_and_a_new_one_starts() -> None:
    worker = CompareWorker(queue_limit=8)
    try:
        await asyncio.wait_for(worker.compare(OP, PRIMARY, PRIMARY, BODY), timeout=30)
        first = _worker_pid(worker)
        os.kill(first, signal.SIGKILL)
        lost = worker.compare(OP, PRIMARY, CANDIDATE, BODY)
        with pytest.raises(Exception, match="worker"):
            await asyncio.wait_for(lost, timeout=30)
        for _ in range(100):  # until the loop has seen the exit
            try:
                again = worker.compare(OP, PRIMARY, PRIMARY, BODY)
                assert await asyncio.wait_for(again, timeout=30) == []
                break
            except Exception:
                await asyncio.sleep(0.05)
        assert _worker_pid(worker) != first
    finally:
        await worker.aclose()
