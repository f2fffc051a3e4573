"""The shadow mirrors, in a worker process: sent, answered and compared off the gateway.

A mirror costs what proxying a request costs (measured: ~0.125 ms of the gateway's CPU per
mirrored request, most of it the loopback socket writes, reads and wake-ups of the
exchange with the candidate, then ~0.3 ms per comparison that parses and walks both JSON
bodies). Done in the gateway, that CPU is taken from the cores the primary's requests run
on. So the gateway only hands each sampled request and the primary's answer to this
process (``python -m gateway.shadow_worker``, started by the gateway, run at a lower CPU
priority); the worker sends the mirror to the candidate (and, for a noise sample, to the
primary again), compares the answers with the operation's comparator and hands the
outcome back. Both directions are batched: the gateway writes what was sampled in the
last ``HANDOFF_S`` as one frame, the worker writes the outcomes of the last ``RESULTS_S``
as one, so the gateway pays one pipe write and one read per batch, not an HTTP exchange
per mirror. The worker sends at most ``GATEWAY_SHADOW_MAX_INFLIGHT`` mirrors at a time
(beyond that it drops one and says so); at most ``GATEWAY_SHADOW_COMPARE_QUEUE`` mirrors
are without an outcome in the gateway (waiting to be handed over while the worker starts,
or owed by it); beyond that the gateway drops the mirror. Both drops are counted.

A process rather than a thread: a thread would hold the gateway's GIL (the loop waits up
to the 5 ms switch interval), and its CPU could neither be given a lower priority nor run
on another core than the gateway's.

Frames both ways: 4-byte big-endian length, then a pickle of a list (a trusted child of
ours). The worker's settings are its one argument, as JSON (``WorkerConfig``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from gateway.headers import media_type
from gateway.http1 import Http1Upstream
from gateway.upstream import RawHeaders, Timeouts
from shared_schemas.comparators import COMPARATORS, Comparator, FieldDiff

# Two pseudo-fields for differences that are not in a JSON body.
STATUS_FIELD = "$status"
BODY_FIELD = "$body"
_LENGTH = struct.Struct(">I")
# Nice value of the worker: under CPU contention it yields to the gateway's event loop.
WORKER_NICE = 10
# Batching: what was sampled (gateway) or settled (worker) within this long goes as one
# frame. Each frame can wake the other side's event loop: on cores the primary saturates,
# a wake-up (a context switch) costs more than the bytes, so the outcomes, which nothing
# waits for, come back seldom.
HANDOFF_S = 0.02
RESULTS_S = 0.1


class Answer(NamedTuple):
    status: int
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What the worker needs from the gateway's settings."""

    candidate_url: str  # base URLs
    primary_url: str
    connect_timeout_s: float
    timeout_s: float  # a mirror's whole exchange, GATEWAY_SHADOW_TIMEOUT_S
    capture_bytes: int  # answers larger than this are not compared
    max_inflight: int  # GATEWAY_SHADOW_MAX_INFLIGHT: mirrors whose requests are unanswered
    keepalive_s: float


class Job(NamedTuple):
    """One sampled request, handed over after the primary's answer was sent (tuples: they
    pickle without a Python call per object, unlike dataclasses)."""

    job_id: int
    operation_id: str
    method: str
    target: str  # path and query
    headers: RawHeaders  # as forwarded to the primary, X-Shadow added
    body: bytes
    primary: Answer
    noise: bool  # also send it to the primary again (the primary's own variation)


@dataclass(slots=True)
class Noise:
    """The primary's second answer to a job and where it differed from its first."""

    status: int
    elapsed_ms: float
    diffs: list[FieldDiff]


@dataclass(slots=True)
class Result:
    """A job's outcome (the candidate's diffs beyond the primary's noise, or an error)."""

    job_id: int
    candidate_status: int | None = None
    candidate_ms: float | None = None
    diffs: list[FieldDiff] = field(default_factory=list)
    error: str | None = None
    noise: Noise | None = None
    dropped: bool = False  # not sent: GATEWAY_SHADOW_MAX_INFLIGHT mirrors were in flight


def compare_answers(
    comparator: Comparator, primary: Answer, candidate: Answer, request_body: bytes
) -> list[FieldDiff]:
    """Differences between two answers: the status, then the JSON body field by field."""
    if primary.status != candidate.status:
        return [
            FieldDiff(STATUS_FIELD, STATUS_FIELD, "exact", "different status",
                      primary.status, candidate.status)
        ]  # fmt: skip
    if primary.media_type != candidate.media_type:
        return [
            FieldDiff("$content-type", "$content-type", "exact", "different media type",
                      primary.media_type, candidate.media_type)
        ]  # fmt: skip
    if primary.status >= 400:
        return []  # both refused: the error shape is the contract suite's to check
    if primary.media_type == "application/json":
        try:
            a, b = json.loads(primary.content), json.loads(candidate.content)
        except ValueError as exc:
            return [FieldDiff(BODY_FIELD, BODY_FIELD, "exact", f"not JSON: {exc}")]
        try:
            request = json.loads(request_body) if request_body else None
        except ValueError:
            request = None
        return comparator.diff(a, b, request)
    if "$" in comparator.rules or primary.content == candidate.content:
        return []  # non-JSON answers: equal bytes, unless declared shape-only
    return [
        FieldDiff(BODY_FIELD, BODY_FIELD, "exact", f"{len(primary.content)} vs "
                  f"{len(candidate.content)} bytes differ")
    ]  # fmt: skip


def differences(operation_id: str, primary: Answer, other: Answer, body: bytes) -> list[FieldDiff]:
    """Identical status, media type and bytes cannot differ whatever the comparator (the
    common case: no parsing); other pairs by the operation's comparator."""
    if other == primary:
        return []
    return compare_answers(COMPARATORS[operation_id], primary, other, body)


def _frame(items: list[Any]) -> bytes:
    payload = pickle.dumps(items, protocol=5)
    return _LENGTH.pack(len(payload)) + payload


class WorkerFull(Exception):
    """``GATEWAY_SHADOW_COMPARE_QUEUE`` mirrors already wait for their outcome."""


@dataclass(slots=True)
class _Session:
    """One worker process and the jobs it owes an outcome for."""

    process: asyncio.subprocess.Process
    owed: dict[int, asyncio.Future[Result]] = field(default_factory=dict)
    closed: bool = False  # its output ended: it answers nothing more

    @property
    def usable(self) -> bool:
        return not self.closed and self.process.returncode is None


class MirrorWorker:
    """The gateway's side: one worker process, started on first use and after it died."""

    def __init__(self, config: WorkerConfig, queue_limit: int) -> None:
        self._config = json.dumps(asdict(config))
        self._limit = queue_limit
        self._session: _Session | None = None
        self._waiting: list[tuple[Job, asyncio.Future[Result]]] = []  # not handed over yet
        self._unsettled: set[asyncio.Future[Result]] = set()  # waiting or owed
        self._handoff: asyncio.TimerHandle | None = None
        self._starting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def unsettled(self) -> int:
        """Jobs without an outcome yet (waiting to be handed over, or owed by the worker)."""
        return len(self._unsettled)

    def submit(self, job: Job) -> asyncio.Future[Result]:
        """A future of the job's outcome; WorkerFull when the queue is full (never waits)."""
        if len(self._unsettled) >= self._limit:
            raise WorkerFull
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._unsettled.add(future)
        future.add_done_callback(self._unsettled.discard)
        self._waiting.append((job, future))
        if self._handoff is None and self._starting is None:
            self._handoff = loop.call_later(HANDOFF_S, self._hand_off)
        return future

    def _hand_off(self) -> None:
        """Write the waiting jobs as one frame (or start the worker first)."""
        self._handoff = None
        session = self._session
        if session is None or not session.usable:
            if self._starting is None:
                self._starting = asyncio.get_running_loop().create_task(self._start())
            return
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        for job, future in waiting:
            session.owed[job.job_id] = future
        stdin = session.process.stdin
        assert stdin is not None
        try:
            # plain tuples on the wire: pickled in C, no __reduce__ call per job
            stdin.write(_frame([(*job[:6], tuple(job.primary), job.noise) for job, _ in waiting]))
        except Exception as exc:  # the pipe is gone: the reader fails what is owed
            for job, future in waiting:
                session.owed.pop(job.job_id, None)
                if not future.done():
                    future.set_exception(RuntimeError(f"comparison worker exited: {exc!r}"))

    async def _start(self) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.shadow_worker", self._config,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
        except Exception as exc:  # cannot start: what waits is failed (counted as errors)
            waiting, self._waiting = self._waiting, []
            for _, future in waiting:
                if not future.done():
                    future.set_exception(RuntimeError(f"comparison worker not started: {exc}"))
            return
        finally:
            self._starting = None
        session = self._session = _Session(process)
        reader = asyncio.create_task(self._read(session), name="shadow-worker")
        self._tasks.add(reader)
        reader.add_done_callback(self._tasks.discard)
        self._hand_off()

    async def _read(self, session: _Session) -> None:
        stdout = session.process.stdout
        assert stdout is not None
        try:
            while True:
                header = await stdout.readexactly(_LENGTH.size)
                results: list[Result] = pickle.loads(
                    await stdout.readexactly(_LENGTH.unpack(header)[0])
                )
                for result in results:
                    future = session.owed.pop(result.job_id, None)
                    if future is not None and not future.done():
                        future.set_result(result)
        except Exception as exc:  # end of output (the worker died) or a garbled frame
            session.closed = True
            error = RuntimeError(f"comparison worker exited: {exc!r}")
            owed, session.owed = session.owed, {}
            for future in owed.values():  # their outcomes died with the worker
                if not future.done():
                    future.set_exception(error)
            if self._waiting and self._handoff is None and self._starting is None:
                self._hand_off()  # a new worker for what waits

    async def aclose(self) -> None:
        """Hand over what waits, let the owed outcomes come (10 s at most), stop the worker."""
        if self._handoff is not None:
            self._handoff.cancel()
            self._hand_off()
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            if session.owed:
                await asyncio.wait(list(session.owed.values()), timeout=10)
            process = session.process
            if process.stdin is not None:
                process.stdin.close()  # the worker ends at the end of its input
            try:
                await asyncio.wait_for(process.wait(), timeout=5)
            except TimeoutError:
                process.kill()
                await process.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        stopped = RuntimeError("comparison worker stopped")
        left = [future for _, future in self._waiting]
        left += list(session.owed.values()) if session is not None else []
        self._waiting = []
        for future in left:
            if not future.done():
                future.set_exception(stopped)


class Mirrors:
    """The worker's side: sends each job's mirror, compares, batches the outcomes."""

    def __init__(self, config: WorkerConfig, write: Any) -> None:
        self._config = config
        self._write = write  # bytes -> None (the pipe to the gateway)
        self._timeouts = Timeouts(config.connect_timeout_s, config.timeout_s)
        self.upstream = Http1Upstream(2 * config.max_inflight, config.keepalive_s)
        self._sending = 0  # mirrors whose requests are not answered yet (the bound)
        # per operation: fields in which the primary was seen to differ from itself
        self.noise: dict[str, set[str]] = {}
        self._results: list[Result] = []
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def take(self, jobs: list[Job]) -> None:
        for job in jobs:
            if self._sending >= self._config.max_inflight:
                self._settled(Result(job.job_id, dropped=True))
                continue
            self._sending += 1
            task = asyncio.get_running_loop().create_task(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._flush_results()

    async def _run(self, job: Job) -> None:
        result = Result(job.job_id)
        op_id = job.operation_id
        try:
            try:  # the requests: they hold one of GATEWAY_SHADOW_MAX_INFLIGHT
                started = time.perf_counter()
                answer = await self._send(self._config.candidate_url, job)
                result.candidate_status = answer.status
                result.candidate_ms = (time.perf_counter() - started) * 1000
                again: tuple[Answer, float] | None = None
                if job.noise:
                    started = time.perf_counter()
                    again_answer = await self._send(self._config.primary_url, job)
                    again = (again_answer, (time.perf_counter() - started) * 1000)
            finally:
                self._sending -= 1
            if again is not None:
                diffs = differences(op_id, job.primary, again[0], job.body)
                self.noise.setdefault(op_id, set()).update(diff.pattern for diff in diffs)
                result.noise = Noise(again[0].status, again[1], diffs)
            noisy = self.noise.get(op_id, set())
            found = differences(op_id, job.primary, answer, job.body)
            result.diffs = [diff for diff in found if diff.pattern not in noisy]
        except Exception as exc:  # a timeout, a refused connection, a bug: that job's error
            result.error = f"{type(exc).__name__}: {exc}"[:255]
        self._settled(result)

    def _settled(self, result: Result) -> None:
        self._results.append(result)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(RESULTS_S, self._flush_results)

    def _flush_results(self) -> None:
        self._flush = None
        results, self._results = self._results, []
        if results:
            self._write(_frame(results))

    async def _send(self, base_url: str, job: Job) -> Answer:
        capture = self._config.capture_bytes
        async with asyncio.timeout(self._timeouts.read):
            # repeatable: mirrors never write
            response = await self.upstream.send(
                job.method, base_url + job.target, job.headers, job.body, self._timeouts,
                repeatable=True,
            )  # fmt: skip
            try:
                parts = []
                size = 0
                async for chunk in response.chunks():
                    size += len(chunk)
                    if size > capture:
                        raise ValueError(f"answer larger than {capture} bytes")
                    parts.append(chunk)
                content = b"".join(parts)
            finally:
                await response.aclose()
        return Answer(response.status, media_type(response.headers).decode("latin-1"), content)


async def serve(config: WorkerConfig) -> None:
    """The worker's loop: read batches of jobs until the end of input, then finish them."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)
    mirrors = Mirrors(config, transport.write)
    try:
        while True:
            try:
                header = await reader.readexactly(_LENGTH.size)
                frame = pickle.loads(await reader.readexactly(_LENGTH.unpack(header)[0]))
            except asyncio.IncompleteReadError:
                break  # the gateway closed our input (or exited)
            jobs = [
                Job(job_id, op_id, method, target, headers, body, Answer(*primary), noise)
                for job_id, op_id, method, target, headers, body, primary, noise in frame
            ]
            mirrors.take(jobs)
        await mirrors.drain()
    finally:
        await mirrors.upstream.aclose()
        transport.close()


def main() -> int:
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    config = WorkerConfig(**json.loads(sys.argv[1]))
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    # run as the imported module, so the outcomes pickle as gateway.shadow_worker.Result
    from gateway.shadow_worker import main as imported_main

    raise SystemExit(imported_main())
