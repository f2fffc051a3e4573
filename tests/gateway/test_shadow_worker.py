"""The shadow mirrors' worker process: sends, compares as inline would, stores, counts,
bounded, restarted, drained on close."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import Callable, Iterator

import asyncpg
import pytest
from starlette.types import Receive, Scope, Send

from gateway.shadow_worker import (
    BODY_FIELD,
    STATUS_FIELD,
    WORKER_NICE,
    Answer,
    Job,
    MirrorWorker,
    Tally,
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


class Outcomes:
    """What the gateway is told: the worker's tallies merged, the mirrors lost."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.lost: list[tuple[dict[str, int], str]] = []
        self.told = asyncio.Event()

    def merge(self, tally: Tally) -> None:
        self.tally.merge(tally)
        self.told.set()

    def lose(self, lost: dict[str, int], why: str) -> None:
        self.lost.append((lost, why))
        self.told.set()

    def count(self, outcome: str, op: str = OP) -> int:
        return self.tally.counts.get((op, outcome), 0)

    def settled(self) -> int:
        return sum(self.tally.settled_per_operation().values())

    async def until(self, settled: int, timeout_s: float = 30) -> None:
        await self.until_true(lambda: self.settled() >= settled, timeout_s)

    async def until_true(self, done: Callable[[], bool], timeout_s: float = 30) -> None:
        async with asyncio.timeout(timeout_s):
            while not done():
                self.told.clear()
                await self.told.wait()


@pytest.fixture
def candidate() -> Iterator[ThreadServer]:
    with serving(Fixed(CANDIDATE)) as server:
        yield server


def _worker(
    candidate_url: str,
    primary_url: str = "",
    queue_limit: int = 8,
    max_inflight: int = 8,
    database_url: str | None = None,
) -> tuple[MirrorWorker, Outcomes, str]:
    name = f"cand-{uuid.uuid4().hex[:8]}"  # its rows apart from other tests'
    config = WorkerConfig(
        primary_name="prim", candidate_name=name, candidate_url=candidate_url,
        primary_url=primary_url or candidate_url, connect_timeout_s=3, timeout_s=30,
        capture_bytes=1 << 20, max_inflight=max_inflight, keepalive_s=4,
        database_url=database_url, flush_interval_s=60,
    )  # fmt: skip
    outcomes = Outcomes()
    return MirrorWorker(config, queue_limit, outcomes.merge, outcomes.lose), outcomes, name


def _job(primary: Answer, target: str = "/x", op: str = OP, noise: bool = False) -> Job:
    return Job(op, "POST", target, [(b"x-shadow", b"1")], BODY, primary, noise, "rid", 2.5)


def _worker_pid(worker: MirrorWorker) -> int:
    session = worker._session  # the process is the thing under test here
    assert session is not None
    return session.process.pid


async def _rows(database_url: str, candidate: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(
            "SELECT * FROM ml_shadow_comparisons WHERE candidate = $1 ORDER BY id", candidate
        )
    finally:
        await conn.close()


async def test_the_worker_finds_and_stores_what_an_inline_comparison_finds(
    candidate: ThreadServer, migrated_pg_url: str
) -> None:
    worker, outcomes, name = _worker(candidate.url, database_url=migrated_pg_url)
    try:
        primaries = [
            PRIMARY,
            CANDIDATE,
            Answer(503, "application/json", b"{}"),
            Answer(200, "application/json", b"not json"),
        ]
        for primary in primaries:
            worker.submit(_job(primary))
        await outcomes.until(4)
        assert outcomes.count("match") == 1 and outcomes.count("differs") == 3
        await worker.flush()  # the worker writes the rows it holds
        rows = await _rows(migrated_pg_url, name)
        expected = [
            sorted({d.pattern for d in compare_answers(COMPARATORS[OP], p, CANDIDATE, BODY)})
            for p in primaries
        ]
        assert sorted(json.loads(r["fields"]) for r in rows) == sorted(expected)
        assert sorted(expected) == [[], [BODY_FIELD], [STATUS_FIELD], ["multiplier"]]
        assert all(r["candidate_status"] == 200 and r["error"] is None for r in rows)
        assert all(r["primary_backend"] == "prim" and r["primary_ms"] == 2.5 for r in rows)
        assert [r["matched"] for r in rows].count(True) == 1
        assert outcomes.tally.latency[("candidate", OP)][-1] > 0  # the seconds, summed
        # a separate process, at a lower CPU priority than the gateway
        pid = _worker_pid(worker)
        assert pid != os.getpid()
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + WORKER_NICE)
    finally:
        await worker.aclose()
    assert worker.waiting == 0 and outcomes.lost == []


async def test_the_primarys_own_variation_is_not_counted(candidate: ThreadServer) -> None:
    """A noise job is sent to the primary again: the field it varies in is left out."""
    again = _json(multiplier=3.15, direction="underestimated", request_id="c")
    with serving(Fixed(again)) as primary:
        worker, outcomes, _ = _worker(candidate.url, primary.url)
        try:
            worker.submit(_job(PRIMARY, op=GENERATE, noise=True))
            await outcomes.until(1)
            # the candidate differs only where the primary does
            assert outcomes.count("match", GENERATE) == 1
            worker.submit(_job(PRIMARY, op=GENERATE))
            await outcomes.until(2)
            assert outcomes.count("match", GENERATE) == 2
        finally:
            await worker.aclose()


async def test_a_dead_candidate_is_the_jobs_error(dead_url: str, migrated_pg_url: str) -> None:
    worker, outcomes, name = _worker(dead_url, database_url=migrated_pg_url)
    try:
        worker.submit(_job(PRIMARY))
        await outcomes.until(1)
        assert outcomes.count("error") == 1
    finally:
        await worker.aclose()  # writes what it holds
    (row,) = await _rows(migrated_pg_url, name)
    assert row["error"] is not None and "ConnectFailed" in row["error"]
    assert row["candidate_status"] is None and not row["matched"]


async def test_a_full_queue_refuses_at_once(candidate: ThreadServer) -> None:
    worker, outcomes, _ = _worker(candidate.url, queue_limit=2)
    try:
        for _ in range(2):  # held while the worker starts
            worker.submit(_job(PRIMARY))
        with pytest.raises(WorkerFull):
            worker.submit(_job(PRIMARY))
        await outcomes.until(2)
        assert worker.waiting == 0
        worker.submit(_job(CANDIDATE))
        await outcomes.until(3)
        assert outcomes.count("match") == 1
    finally:
        await worker.aclose()


async def test_a_mirror_handed_over_no_longer_counts_against_the_queue() -> None:
    """The queue bounds what the gateway holds (bodies waiting for the hand-off), not the
    mirrors the worker is sending or holds outcomes of: with a queue of one, a second
    mirror is taken while the first is still at the candidate."""
    echo = EchoUpstream("candidate")
    with serving(echo) as server:
        worker, outcomes, _ = _worker(server.url, queue_limit=1)
        try:
            worker.submit(_job(PRIMARY, target="/x?sleep=1"))
            for _ in range(600):  # handed over and sent: held upstream
                if echo.state.requests == 1:
                    break
                await asyncio.sleep(0.05)
            assert echo.state.requests == 1 and worker.waiting == 0
            worker.submit(_job(PRIMARY))  # no WorkerFull
            await outcomes.until(2)
            assert outcomes.count("differs") == 2
        finally:
            await worker.aclose()


async def test_mirrors_beyond_the_bound_are_dropped_not_queued() -> None:
    echo = EchoUpstream("candidate")
    with serving(echo) as server:
        worker, outcomes, _ = _worker(server.url, max_inflight=1)
        try:
            worker.submit(_job(PRIMARY, target="/x?sleep=1"))  # held
            await asyncio.sleep(0.5)  # handed over and sent
            worker.submit(_job(PRIMARY))
            await outcomes.until(1)
            assert outcomes.count("dropped_inflight") == 1
            await outcomes.until(2)
            assert echo.state.requests == 1  # the dropped one was never sent
            worker.submit(_job(PRIMARY))
            await outcomes.until(3)
            assert outcomes.count("dropped_inflight") == 1 and echo.state.requests == 2
        finally:
            await worker.aclose()


@pytest.mark.timeout(60)
async def test_a_dead_worker_counts_its_mirrors_lost_and_a_new_one_starts() -> None:
    echo = EchoUpstream("candidate")
    with serving(echo) as server:
        worker, outcomes, _ = _worker(server.url)
        try:
            worker.submit(_job(PRIMARY))
            await outcomes.until(1)
            first = _worker_pid(worker)
            worker.submit(_job(PRIMARY, target="/x?sleep=20"))  # held upstream
            for _ in range(200):
                if echo.state.requests == 2:
                    break
                await asyncio.sleep(0.05)
            os.kill(first, signal.SIGKILL)
            await outcomes.until_true(lambda: bool(outcomes.lost))
            ((lost, why),) = outcomes.lost
            assert lost == {OP: 1} and "worker exited" in why
            worker.submit(_job(PRIMARY))
            await outcomes.until(2)
            assert _worker_pid(worker) != first
        finally:
            await worker.aclose()


async def test_closing_finishes_the_mirrors_and_writes_their_results(
    migrated_pg_url: str,
) -> None:
    """Shutdown drains: mirrors still waiting or in flight are sent, compared, stored and
    counted before the worker stops."""
    echo = EchoUpstream("candidate")
    with serving(echo) as server:
        worker, outcomes, name = _worker(server.url, database_url=migrated_pg_url)
        for _ in range(3):
            worker.submit(_job(PRIMARY, target="/x?sleep=0.5"))
        await worker.aclose()
    assert outcomes.settled() == 3 and outcomes.lost == []
    assert len(await _rows(migrated_pg_url, name)) == 3


async def test_start_waits_for_a_ready_worker_and_starts_one_only(candidate: ThreadServer) -> None:
    worker, outcomes, _ = _worker(candidate.url)
    try:
        assert await worker.start()  # it said it is ready
        first = _worker_pid(worker)
        assert await worker.start()
        assert _worker_pid(worker) == first  # the running one
        worker.submit(_job(CANDIDATE))
        await outcomes.until(1)
        assert outcomes.count("match") == 1 and _worker_pid(worker) == first
    finally:
        await worker.aclose()
