"""The shadow mirrors, in a worker process: sent, answered, compared and stored off the gateway.

A mirror costs what proxying a request costs (measured: ~0.125 ms of the gateway's CPU per
mirrored request, most of it the loopback socket writes, reads and wake-ups of the
exchange with the candidate, then ~0.3 ms per comparison that parses and walks both JSON
bodies). Done in the gateway, that CPU is taken from the cores the primary's requests run
on. So the gateway only hands each sampled request and the primary's answer to this
process (``python -m gateway.shadow_worker``, started by the gateway, run at a lower CPU
priority), which owns the outcome end to end: it sends the mirror to the candidate (and,
for a noise sample, to the primary again), compares the answers with the operation's
comparator, writes the result rows to Postgres itself (``gateway/shadow_store.py``) and
keeps the counts and latencies per operation. The gateway gets those back as a small
``Tally`` (counts per operation and outcome, latency histogram counts, differing fields)
at most every ``TALLY_S``, for ``/metrics`` and the report: no per-mirror object, future
or callback waits in the gateway for an outcome.

Bounds. The gateway holds at most ``GATEWAY_SHADOW_COMPARE_QUEUE`` mirrors for the worker
(waiting for the next hand-off, for a worker that died to be replaced, or for the pipe to
take the last batch: a worker that does not read gets no more), beyond that it drops the
mirror. The
worker sends at most ``GATEWAY_SHADOW_MAX_INFLIGHT`` mirrors at a time, beyond that it
drops one (never queues it). Both drops are counted. Hand-offs are batched: what was
sampled in the last ``HANDOFF_S`` goes as one frame, so the gateway pays one pipe write per
batch, not an HTTP exchange per mirror. A worker that dies takes the outcomes it owed
with it: the gateway counts them as errors (it knows how many it handed over per
operation and how many the tallies settled).

A process rather than a thread: a thread would hold the gateway's GIL (the loop waits up
to the 5 ms switch interval), and its CPU could neither be given a lower priority nor run
on another core than the gateway's.

Frames both ways: 4-byte big-endian length, then a pickle of ``(kind, payload)`` (a trusted
child of ours). To the worker: ``config`` first (the ``WorkerConfig``, on the pipe rather
than the command line: the database URL holds a password), then ``jobs`` and ``flush``
(write what is buffered, then answer ``flushed``: the report reads fresh rows); from it:
``ready`` (once, when it takes jobs), ``tally`` and ``flushed``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import logging
import os
import pickle
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from gateway.headers import media_type
from gateway.http1 import Http1Upstream
from gateway.shadow_store import Comparison, ShadowStore
from gateway.upstream import RawHeaders, Timeouts
from shared_schemas.comparators import COMPARATORS, Comparator, FieldDiff

log = logging.getLogger("gateway.shadow")
# Two pseudo-fields for differences that are not in a JSON body.
STATUS_FIELD = "$status"
BODY_FIELD = "$body"
_LENGTH = struct.Struct(">I")
# Nice value of the worker: under CPU contention it yields to the gateway's event loop.
WORKER_NICE = 10
# Batching: what was sampled within HANDOFF_S goes to the worker as one frame; the worker's
# counts come back at most every TALLY_S. Each frame can wake the other side's event loop:
# on cores the primary saturates, a wake-up (a context switch) costs more than the bytes,
# so the tallies, which nothing waits for, come back seldom.
HANDOFF_S = 0.02
TALLY_S = 0.5
# How a sampled request ended (gateway_shadow_requests_total's outcome label).
MATCH, DIFFERS, ERROR, SKIPPED = "match", "differs", "error", "skipped"
DROPPED_INFLIGHT = "dropped_inflight"  # GATEWAY_SHADOW_MAX_INFLIGHT mirrors already sent
DROPPED_QUEUE = "dropped_queue"  # GATEWAY_SHADOW_COMPARE_QUEUE mirrors held by the gateway
DROP_REASONS = (DROPPED_INFLIGHT, DROPPED_QUEUE)
# Outcomes the worker settles a handed-over mirror with (the others are the gateway's).
SETTLED = (MATCH, DIFFERS, ERROR, DROPPED_INFLIGHT)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Answer(NamedTuple):
    status: int
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What the worker needs from the gateway's settings."""

    primary_name: str
    candidate_name: str
    candidate_url: str  # base URLs
    primary_url: str
    connect_timeout_s: float
    timeout_s: float  # a mirror's whole exchange, GATEWAY_SHADOW_TIMEOUT_S
    capture_bytes: int  # answers larger than this are not compared
    max_inflight: int  # GATEWAY_SHADOW_MAX_INFLIGHT: mirrors whose requests are unanswered
    keepalive_s: float
    database_url: str | None = None  # where the results go (None: counted, not stored)
    flush_interval_s: float = 1.0
    examples_per_field: int = 5
    buffer_rows: int = 10_000


class Job(NamedTuple):
    """One sampled request, handed over after the primary's answer was sent (tuples: they
    pickle without a Python call per object, unlike dataclasses)."""

    operation_id: str
    method: str
    target: str  # path and query
    headers: RawHeaders  # as forwarded to the primary, X-Shadow added
    body: bytes
    primary: Answer
    noise: bool  # also send it to the primary again (the primary's own variation)
    request_id: str
    primary_ms: float  # the primary's answer, as the gateway timed it


class Tally:
    """Counts per operation and outcome, differing fields, latency histograms per side and
    operation (one count per bucket of LATENCY_BUCKETS, +Inf last, then the sum of seconds).

    The worker's is taken (and emptied) for each tally frame; the gateway merges them into
    its own, which /metrics shows (plain dict updates: no metric object per mirror).
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.differences: dict[str, int] = {}
        self.latency: dict[tuple[str, str], list[float]] = {}

    def __bool__(self) -> bool:
        return bool(self.counts)

    def count(self, op_id: str, outcome: str, n: int = 1) -> None:
        self.counts[op_id, outcome] = self.counts.get((op_id, outcome), 0) + n

    def observe(self, side: str, op_id: str, seconds: float) -> None:
        histogram = self.latency.get((side, op_id))
        if histogram is None:
            histogram = self.latency[side, op_id] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        histogram[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        histogram[-1] += seconds

    def settled(self, comparison: Comparison) -> None:
        """A mirror's outcome (its primary side too: only compared mirrors are timed)."""
        op_id = comparison.operation_id
        self.observe("primary", op_id, comparison.primary_ms / 1000)
        if comparison.candidate_ms is not None:
            self.observe("candidate", op_id, comparison.candidate_ms / 1000)
        outcome = ERROR if comparison.error else MATCH if comparison.matched else DIFFERS
        self.count(op_id, outcome)
        if comparison.diffs:
            self.differences[op_id] = self.differences.get(op_id, 0) + len(comparison.diffs)

    def merge(self, other: Tally) -> None:
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        for op_id, n in other.differences.items():
            self.differences[op_id] = self.differences.get(op_id, 0) + n
        for key, histogram in other.latency.items():
            mine = self.latency.setdefault(key, [0.0] * len(histogram))
            for i, value in enumerate(histogram):
                mine[i] += value

    def settled_per_operation(self) -> dict[str, int]:
        """Handed-over mirrors this tally settles (by the worker's outcomes)."""
        out: dict[str, int] = {}
        for (op_id, outcome), n in self.counts.items():
            if outcome in SETTLED:
                out[op_id] = out.get(op_id, 0) + n
        return out

    def take(self) -> dict[str, Any]:
        """The counts as plain dicts (they pickle in C), this tally emptied."""
        taken = {"counts": self.counts, "differences": self.differences, "latency": self.latency}
        self.counts, self.differences, self.latency = {}, {}, {}
        return taken

    @classmethod
    def of(cls, taken: dict[str, Any]) -> Tally:
        tally = cls()
        tally.counts, tally.differences = taken["counts"], taken["differences"]
        tally.latency = taken["latency"]
        return tally


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


def _frame(kind: str, payload: Any) -> bytes:
    data = pickle.dumps((kind, payload), protocol=5)
    return _LENGTH.pack(len(data)) + data


async def _read_frame(reader: asyncio.StreamReader) -> tuple[str, Any]:
    header = await reader.readexactly(_LENGTH.size)
    kind, payload = pickle.loads(await reader.readexactly(_LENGTH.unpack(header)[0]))
    return kind, payload


class WorkerFull(Exception):
    """``GATEWAY_SHADOW_COMPARE_QUEUE`` mirrors already wait to be handed over."""


@dataclass(slots=True)
class _Session:
    """One worker process and what it owes: mirrors handed over per operation, not settled."""

    process: asyncio.subprocess.Process
    owed: dict[str, int]
    flushes: dict[int, asyncio.Future[None]]
    ready: asyncio.Future[None]  # it said ``ready`` (or its output ended)
    closed: bool = False  # its output ended: it answers nothing more

    @property
    def usable(self) -> bool:
        return not self.closed and self.process.returncode is None


class MirrorWorker:
    """The gateway's side: one worker process, started by ``start`` (the gateway's lifespan,
    before the first request is accepted: the first mirrors find it running), and again on
    the next mirror after it died.

    ``on_tally`` gets each tally the worker sends; ``on_lost`` the mirrors (per operation)
    that will have no outcome: the worker died with them, or could not be started.
    """

    def __init__(
        self,
        config: WorkerConfig,
        queue_limit: int,
        on_tally: Callable[[Tally], None],
        on_lost: Callable[[dict[str, int], str], None],
    ) -> None:
        self._config = asdict(config)
        self._limit = queue_limit
        self._on_tally = on_tally
        self._on_lost = on_lost
        self._session: _Session | None = None
        self._waiting: list[Job] = []  # not handed over yet
        self._handoff: asyncio.TimerHandle | None = None
        self._starting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._tokens = itertools.count()
        self._closing = False  # aclose: no new worker

    @property
    def waiting(self) -> int:
        """Mirrors held by the gateway for the worker (not handed over yet)."""
        return len(self._waiting)

    async def start(self, timeout_s: float = 10.0) -> bool:
        """Start the worker process and wait until it is ready to take mirrors (at most
        ``timeout_s``: past it, mirrors wait for it in the queue as they would after a
        restart). True when it said it is ready."""
        starting = self._starting
        if starting is None and (self._session is None or not self._session.usable):
            starting = self._starting = asyncio.get_running_loop().create_task(self._start())
        if starting is not None:
            await asyncio.gather(starting, return_exceptions=True)
        session = self._session
        if session is None:  # could not be started (logged)
            return False
        try:
            await asyncio.wait_for(asyncio.shield(session.ready), timeout_s)
        except TimeoutError:
            log.warning("shadow worker not ready after %.0f s: mirrors wait for it", timeout_s)
            return False
        return session.usable

    def submit(self, job: Job) -> None:
        """Queue a job for the next hand-off; WorkerFull when the queue is full (never waits)."""
        if len(self._waiting) >= self._limit:
            raise WorkerFull
        self._waiting.append(job)
        if self._handoff is None and self._starting is None:
            self._handoff = asyncio.get_running_loop().call_later(HANDOFF_S, self._hand_off)

    def _hand_off(self, force: bool = False) -> None:
        """Write the waiting jobs as one frame (or start the worker first)."""
        self._handoff = None
        session = self._session
        if session is None or not session.usable:
            if self._starting is None and self._waiting and not self._closing:
                self._starting = asyncio.get_running_loop().create_task(self._start())
            return
        stdin = session.process.stdin
        assert stdin is not None
        if stdin.transport.get_write_buffer_size() and not force:  # the last batch is not taken
            self._handoff = asyncio.get_running_loop().call_later(HANDOFF_S, self._hand_off)
            return
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        for job in waiting:
            session.owed[job.operation_id] = session.owed.get(job.operation_id, 0) + 1
        try:
            # plain tuples on the wire: pickled in C, no __reduce__ call per job
            stdin.write(
                _frame("jobs", [(*job[:5], tuple(job.primary), *job[6:]) for job in waiting])
            )
        except Exception as exc:  # the pipe is gone: the reader counts what is owed
            log.warning("shadow worker pipe closed: %r", exc)

    async def _start(self) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.shadow_worker",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert process.stdin is not None
            process.stdin.write(_frame("config", self._config))
        except Exception as exc:  # cannot start: what waits is lost (counted as errors)
            log.warning("shadow worker not started: %r", exc)
            waiting, self._waiting = self._waiting, []
            self._lose(waiting, f"comparison worker not started: {exc!r}")
            return
        finally:
            self._starting = None
        ready = asyncio.get_running_loop().create_future()
        session = self._session = _Session(process, {}, {}, ready)
        reader = asyncio.create_task(self._read(session), name="shadow-worker")
        self._tasks.add(reader)
        reader.add_done_callback(self._tasks.discard)
        self._hand_off()

    def _lose(self, jobs: list[Job], why: str) -> None:
        lost: dict[str, int] = {}
        for job in jobs:
            lost[job.operation_id] = lost.get(job.operation_id, 0) + 1
        if lost:
            self._on_lost(lost, why)

    async def _read(self, session: _Session) -> None:
        stdout = session.process.stdout
        assert stdout is not None
        try:
            while True:
                kind, payload = await _read_frame(stdout)
                if kind == "tally":
                    tally = Tally.of(payload)
                    for op_id, n in tally.settled_per_operation().items():
                        session.owed[op_id] = session.owed.get(op_id, 0) - n
                    self._on_tally(tally)
                elif kind == "ready":
                    if not session.ready.done():
                        session.ready.set_result(None)
                elif kind == "flushed":
                    done = session.flushes.pop(payload, None)
                    if done is not None and not done.done():
                        done.set_result(None)
        except Exception as exc:  # end of output (the worker stopped or died), a garbled frame
            session.closed = True
            if not session.ready.done():
                session.ready.set_result(None)
            for done in session.flushes.values():
                if not done.done():
                    done.set_result(None)
            lost = {op_id: n for op_id, n in session.owed.items() if n > 0}
            session.owed = {}
            if lost:  # their outcomes died with the worker
                self._on_lost(lost, f"comparison worker exited: {exc!r}")
            if self._waiting and self._handoff is None and self._starting is None:
                self._hand_off()  # a new worker for what waits

    async def flush(self, timeout_s: float = 5.0) -> None:
        """Let the worker write the results it holds (the report reads fresh rows)."""
        session = self._session
        if session is None or not session.usable:
            return
        stdin = session.process.stdin
        assert stdin is not None
        token = next(self._tokens)
        done = session.flushes[token] = asyncio.get_running_loop().create_future()
        try:
            stdin.write(_frame("flush", token))
            await asyncio.wait_for(done, timeout_s)
        except Exception:  # a timeout, a closed pipe: the report reads what is stored
            session.flushes.pop(token, None)

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Hand over what waits; the worker finishes its mirrors, writes the results and
        sends its last tally (``timeout_s`` at most, then it is killed)."""
        if self._handoff is not None:
            self._handoff.cancel()
            self._handoff = None
        usable = self._session is not None and self._session.usable
        if self._waiting and not usable and self._starting is None:  # started for them
            self._starting = asyncio.get_running_loop().create_task(self._start())
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        self._closing = True
        if self._handoff is not None:  # armed by the start
            self._handoff.cancel()
            self._handoff = None
        session = self._session
        if session is not None and session.usable:
            self._hand_off(force=True)
        self._session = None
        if session is not None:
            process = session.process
            if process.stdin is not None:
                process.stdin.close()  # the worker ends at the end of its input
            try:
                await asyncio.wait_for(process.wait(), timeout=timeout_s)
            except TimeoutError:
                process.kill()
                await process.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)  # the last tally, losses
        waiting, self._waiting = self._waiting, []
        self._lose(waiting, "the gateway stopped")


class Mirrors:
    """The worker's side: sends each job's mirror, compares, stores and counts the outcome."""

    def __init__(
        self, config: WorkerConfig, write: Callable[[bytes], None], store: ShadowStore | None
    ) -> None:
        self._config = config
        self._write = write  # the pipe to the gateway
        self._store = store
        self._timeouts = Timeouts(config.connect_timeout_s, config.timeout_s)
        self.upstream = Http1Upstream(2 * config.max_inflight, config.keepalive_s)
        self._sending = 0  # mirrors whose requests are not answered yet (the bound)
        # per operation: fields in which the primary was seen to differ from itself
        self.noise: dict[str, set[str]] = {}
        self.tally = Tally()
        self._tally_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def take(self, jobs: list[Job]) -> None:
        for job in jobs:
            if self._sending >= self._config.max_inflight:
                self.tally.count(job.operation_id, DROPPED_INFLIGHT)
                self._tally_soon()
                continue
            self._sending += 1
            task = asyncio.get_running_loop().create_task(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def flush(self, token: int) -> None:
        """The results written (when stored), the tally sent, then ``flushed``."""
        if self._store is not None:
            await self._store.flush_or_keep()
        self.send_tally()
        self._write(_frame("flushed", token))

    async def _run(self, job: Job) -> None:
        config = self._config
        op_id = job.operation_id
        comparison = Comparison(
            config.primary_name, config.candidate_name, op_id, "shadow", job.primary.status,
            None, primary_ms=job.primary_ms, request_id=job.request_id,
        )  # fmt: skip
        try:
            try:  # the requests: they hold one of GATEWAY_SHADOW_MAX_INFLIGHT
                started = time.perf_counter()
                answer = await self._send(config.candidate_url, job)
                comparison.candidate_status = answer.status
                comparison.candidate_ms = (time.perf_counter() - started) * 1000
                again: tuple[Answer, float] | None = None
                if job.noise:
                    started = time.perf_counter()
                    again_answer = await self._send(config.primary_url, job)
                    again = (again_answer, (time.perf_counter() - started) * 1000)
            finally:
                self._sending -= 1
            if again is not None:
                diffs = differences(op_id, job.primary, again[0], job.body)
                self.noise.setdefault(op_id, set()).update(diff.pattern for diff in diffs)
                if self._store is not None:
                    self._store.add(
                        Comparison(
                            config.primary_name, config.primary_name, op_id, "noise",
                            job.primary.status, again[0].status, diffs, candidate_ms=again[1],
                        )
                    )  # fmt: skip
            noisy = self.noise.get(op_id, set())
            found = differences(op_id, job.primary, answer, job.body)
            comparison.diffs = [diff for diff in found if diff.pattern not in noisy]
        except Exception as exc:  # a timeout, a refused connection, a bug: that job's error
            comparison.error = f"{type(exc).__name__}: {exc}"[:255]
        self.tally.settled(comparison)
        if self._store is not None:
            self._store.add(comparison)
        self._tally_soon()

    def _tally_soon(self) -> None:
        if self._tally_timer is None:
            self._tally_timer = asyncio.get_running_loop().call_later(TALLY_S, self.send_tally)

    def send_tally(self) -> None:
        if self._tally_timer is not None:
            self._tally_timer.cancel()
            self._tally_timer = None
        if self.tally:
            self._write(_frame("tally", self.tally.take()))

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


async def serve() -> None:
    """The worker's loop: its config, then batches of jobs until the end of input; then
    the mirrors finished, the results written and the last tally sent."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)
    try:
        kind, payload = await _read_frame(reader)
    except asyncio.IncompleteReadError:
        return
    assert kind == "config", kind
    config = WorkerConfig(**payload)
    store = None
    if config.database_url:
        store = ShadowStore(
            config.database_url, config.flush_interval_s, config.examples_per_field,
            config.buffer_rows,
        )  # fmt: skip
        await store.start()
    mirrors = Mirrors(config, transport.write, store)
    transport.write(_frame("ready", None))
    flushes: set[asyncio.Task[None]] = set()
    try:
        while True:
            try:
                kind, payload = await _read_frame(reader)
            except asyncio.IncompleteReadError:
                break  # the gateway closed our input (or exited)
            if kind == "jobs":
                mirrors.take(
                    [
                        Job(op_id, method, target, headers, body, Answer(*primary), *rest)
                        for op_id, method, target, headers, body, primary, *rest in payload
                    ]
                )
            elif kind == "flush":
                task = loop.create_task(mirrors.flush(payload))
                flushes.add(task)
                task.add_done_callback(flushes.discard)
        await mirrors.drain()
        await asyncio.gather(*flushes, return_exceptions=True)
    finally:
        try:
            if store is not None:
                await store.stop()
        finally:
            mirrors.send_tally()
            await mirrors.upstream.aclose()
            transport.close()  # after what is buffered is written (2 s at most)
            for _ in range(200):
                if not transport.get_write_buffer_size():
                    break
                await asyncio.sleep(0.01)


def main() -> int:
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    # run as the imported module, so the frames' classes are gateway.shadow_worker's
    from gateway.shadow_worker import main as imported_main

    raise SystemExit(imported_main())
