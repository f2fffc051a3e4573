"""Shadow mode: mirror a sample of live requests to a candidate backend and compare answers.

``ML_SERVICE_SHADOW=<backend>`` turns it on. After the primary's answer has been sent, a
sampled request is sent again to the candidate (fire and forget, at most
``GATEWAY_SHADOW_MAX_INFLIGHT`` at a time: beyond that a mirror is dropped and counted,
never queued) and the two answers are compared by the operation's comparator
(``shared_schemas.comparators``) in a worker process (``gateway/shadow_worker.py``), off
the event loop: at most ``GATEWAY_SHADOW_COMPARE_QUEUE`` comparisons wait for it, beyond
that one is dropped and counted. Nothing of it can delay or fail the primary's answer:
the primary's bodies are only kept (by reference) when sampled and small, and every
shadow failure ends in a counter.

What is never mirrored: operations that write (``Operation.writes``: the candidate shares
the primary's database, so indexing twice would change real data; they are left to the
contract check), bodies too large to buffer, and anything that is not an operation of the
contract. Mirrored requests carry ``X-Shadow: 1`` next to the gateway secret: the backend
marks its log row shadow, writes no usage and charges nothing. They never pass the
gateway's own rate limiter (the gateway sends them itself).

Noise: for operations declared non-deterministic, a share of the mirrored requests is also
sent to the primary a second time (a small sample: ``GATEWAY_SHADOW_NOISE_SAMPLES`` per
operation, each only while no client request is in flight through this gateway, since it
is work for the primary); the fields in which the primary differs from itself are not
counted against the candidate. Deterministic operations are never sent twice.

Results go to Postgres (``ml_shadow_comparisons``, ``ml_shadow_examples``: migration 0004)
in batches, off the request path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from prometheus_client import Counter, Histogram
from starlette.types import Scope

from gateway.headers import Incoming
from gateway.metrics import GatewayMetrics
from gateway.registry import Backend, BackendRegistry
from gateway.settings import GatewayConfigError, GatewaySettings
from gateway.shadow_worker import Answer, CompareWorker, WorkerFull
from gateway.upstream import Timeouts, Upstream
from shared_schemas.comparators import COMPARATORS, FieldDiff, check_comparators
from shared_schemas.operations import Operation, operation_at
from shared_schemas.request_meta import SHADOW_HEADER

log = logging.getLogger("gateway.shadow")
_SHADOW = (SHADOW_HEADER.encode(), b"1")
# Why a sampled request was not compared: two bounds, two outcomes of their own.
DROPPED_INFLIGHT = "dropped_inflight"  # GATEWAY_SHADOW_MAX_INFLIGHT mirrors already sent
DROPPED_QUEUE = "dropped_queue"  # GATEWAY_SHADOW_COMPARE_QUEUE comparisons already waiting
DROP_REASONS = (DROPPED_INFLIGHT, DROPPED_QUEUE)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

INSERT_COMPARISON = """
INSERT INTO ml_shadow_comparisons (
    primary_backend, candidate, operation_id, kind, primary_status, candidate_status,
    matched, fields, error, primary_ms, candidate_ms, created_at
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, now())
"""
# Bounded: a field keeps at most $10 examples however long shadowing runs.
INSERT_EXAMPLE = """
INSERT INTO ml_shadow_examples (
    candidate, operation_id, field, path, rule, detail, request_id, primary_value,
    candidate_value, created_at
)
SELECT $1::varchar, $2::varchar, $3::varchar, $4::varchar, $5::varchar, $6::varchar,
       $7::varchar, $8::jsonb, $9::jsonb, now()
WHERE (SELECT count(*) FROM ml_shadow_examples
       WHERE candidate = $1::varchar AND operation_id = $2::varchar AND field = $3::varchar)
      < $10::int
"""


def shadow_backend(settings: GatewaySettings, registry: BackendRegistry) -> Backend | None:
    """The candidate named by ML_SERVICE_SHADOW, checked against the registry; None when off."""
    name = settings.shadow
    if not name:
        return None
    candidate = registry.backends.get(name)
    if candidate is None:
        raise GatewayConfigError(
            f"ML_SERVICE_SHADOW={name!r} is not a known backend; known backends: "
            f"{', '.join(registry.names)}"
        )
    if candidate is registry.selected:
        raise GatewayConfigError(f"ML_SERVICE_SHADOW={name!r} is the selected backend itself")
    return candidate


@dataclass(slots=True)
class Comparison:
    """One mirrored request's outcome, as one ml_shadow_comparisons row."""

    primary_backend: str
    candidate: str
    operation_id: str
    kind: str  # "shadow" (primary vs candidate) or "noise" (primary vs itself)
    primary_status: int
    candidate_status: int | None
    diffs: list[FieldDiff] = field(default_factory=list)
    error: str | None = None
    primary_ms: float = 0.0
    candidate_ms: float | None = None
    request_id: str = ""

    @property
    def matched(self) -> bool:
        return self.error is None and not self.diffs

    def params(self) -> tuple[Any, ...]:
        fields = sorted({diff.pattern for diff in self.diffs})
        return (
            self.primary_backend, self.candidate, self.operation_id, self.kind,
            self.primary_status, self.candidate_status, self.matched, json.dumps(fields),
            self.error, self.primary_ms, self.candidate_ms,
        )  # fmt: skip


class ShadowMetrics:
    """Shadow counters and latency on the gateway's /metrics (operations bound the labels)."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.requests = Counter(
            "gateway_shadow_requests_total",
            "Mirrored requests by outcome: match, differs, error, skipped (not captured),"
            " dropped_inflight (GATEWAY_SHADOW_MAX_INFLIGHT mirrors in flight: not sent),"
            " dropped_queue (GATEWAY_SHADOW_COMPARE_QUEUE comparisons waiting: not compared).",
            ["candidate", "operation", "outcome"],
            registry=metrics.registry,
        )
        self.differences = Counter(
            "gateway_shadow_field_differences_total",
            "Fields in which the candidate's answer differed (beyond the primary's noise).",
            ["candidate", "operation"],
            registry=metrics.registry,
        )
        self.latency = Histogram(
            "gateway_shadow_duration_seconds",
            "Latency of mirrored requests: the primary's answer and the candidate's.",
            ["side", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=metrics.registry,
        )


class ShadowStore:
    """Comparisons buffered in memory and written to Postgres in batches."""

    def __init__(self, database_url: str, interval_s: float, examples: int, limit: int) -> None:
        self._url = database_url
        self._interval_s = interval_s
        self._examples = examples
        self._limit = limit  # rows buffered while Postgres is away; beyond it, dropped
        self._pending: list[Comparison] = []
        self._seen: dict[tuple[str, str, str], int] = {}  # examples already sent per field
        self._pool: asyncpg.Pool | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.refused = 0

    def add(self, comparison: Comparison) -> None:
        if len(self._pending) >= self._limit:
            self.dropped += 1
            return
        self._pending.append(comparison)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shadow-store")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.flush_or_keep()
        finally:
            if self._pool is not None:
                await self._pool.close()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._url, min_size=0, max_size=2)
        return self._pool

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.flush_or_keep()

    async def flush_or_keep(self) -> None:
        """Flush; rows stay buffered across an outage, a batch Postgres refuses is dropped."""
        try:
            await self.flush()
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            log.warning("shadow results not written yet: %r", exc)
        except asyncpg.PostgresError as exc:  # would be refused again: not worth a retry
            self.refused += len(self._pending)
            self._pending.clear()
            log.error("shadow results refused by Postgres and dropped: %r", exc)

    async def flush(self) -> None:
        """Write what is buffered (the rows stay buffered when the write fails)."""
        if not self._pending:
            return
        # taken whole: rows added while this batch is written wait for the next one
        batch, self._pending = self._pending, []
        examples = self._example_rows(batch)
        try:
            pool = await self.pool()
            async with pool.acquire() as conn, conn.transaction():
                await conn.executemany(INSERT_COMPARISON, [c.params() for c in batch])
                if examples:
                    await conn.executemany(INSERT_EXAMPLE, examples)
        except BaseException:
            self._pending[:0] = batch
            raise

    def _example_rows(self, batch: list[Comparison]) -> list[tuple[Any, ...]]:
        rows = []
        for comparison in batch:
            if comparison.kind != "shadow":
                continue
            for diff in comparison.diffs:
                key = (comparison.candidate, comparison.operation_id, diff.pattern)
                if self._seen.get(key, 0) >= self._examples:
                    continue
                self._seen[key] = self._seen.get(key, 0) + 1
                shown = diff.as_dict()
                rows.append(
                    (
                        comparison.candidate,
                        comparison.operation_id,
                        diff.pattern,
                        diff.path[:255],
                        diff.rule[:16],
                        diff.detail[:255],
                        comparison.request_id,
                        json.dumps(shown["primary"]),
                        json.dumps(shown["candidate"]),
                        self._examples,
                    )
                )
        return rows


class ShadowMirror:
    """Decides which requests to mirror, mirrors them and hands the comparisons on."""

    def __init__(
        self,
        settings: GatewaySettings,
        primary: Backend,
        candidate: Backend,
        metrics: GatewayMetrics,
        store: ShadowStore | None,
        chance: Callable[[], float] = random.random,
        idle: Callable[[], bool] = lambda: True,
    ) -> None:
        check_comparators()
        self.primary = primary
        self.candidate = candidate
        self.store = store
        self.upstream: Upstream | None = None
        self.metrics = ShadowMetrics(metrics)
        self._rate = settings.shadow_sample_rate
        self._noise_rate = settings.shadow_noise_rate
        self._noise_left = settings.shadow_noise_samples  # per operation
        self._noise_sent: dict[str, int] = {}
        self._idle = idle  # no client request in flight: a second request costs no one
        self._max_inflight = settings.shadow_max_inflight
        self._capture_bytes = settings.shadow_capture_bytes
        self._timeouts = Timeouts(settings.connect_timeout_s, settings.shadow_timeout_s)
        self._chance = chance
        self._inflight: set[asyncio.Task[None]] = set()
        self._sending = 0  # mirrors whose requests are not answered yet (the bound)
        self.worker = CompareWorker(settings.shadow_compare_queue)
        # per operation: fields in which the primary was seen to differ from itself
        self.noise: dict[str, set[str]] = {}
        # per operation and reason: sampled requests not compared, since this process started
        self.drops: dict[str, dict[str, int]] = {}

    def sampled(self, scope: Scope) -> Operation | None:
        """The operation of a request to mirror, or None (not sampled, writes, not an operation)."""
        operation = operation_at(scope["method"], scope["path"])
        if operation is None or operation.writes:
            return None
        if self._rate < 1.0 and self._chance() >= self._rate:
            return None
        return operation

    def submit(
        self,
        operation: Operation,
        scope: Scope,
        incoming: Incoming,
        outcome: Any,
        primary_s: float,
    ) -> None:
        """Mirror a request whose primary answer has been sent (returns at once)."""
        op_id = operation.operation_id
        body, answer = outcome.request_body, outcome.response_body
        if (
            body is None
            or answer is None
            or outcome.backend != self.primary.name
            or len(answer) > self._capture_bytes
        ):
            self.metrics.requests.labels(self.candidate.name, op_id, "skipped").inc()
            return
        if self._sending >= self._max_inflight or self.upstream is None:
            self._dropped(op_id, DROPPED_INFLIGHT)
            return
        primary = Answer(outcome.status, outcome.media_type, answer)
        self._sending += 1
        task = asyncio.create_task(
            self._mirror(operation, scope, incoming, body, primary, primary_s)
        )
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def drain(self) -> None:
        """Wait for the mirrors in flight and their comparisons (shutdown, tests)."""
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def aclose(self) -> None:
        """Drain, then stop the comparison worker (shutdown)."""
        try:
            await self.drain()
        finally:
            await self.worker.aclose()

    async def _mirror(
        self,
        operation: Operation,
        scope: Scope,
        incoming: Incoming,
        body: bytes,
        primary: Answer,
        primary_s: float,
    ) -> None:
        op_id = operation.operation_id
        headers = [*incoming.headers, _SHADOW]
        comparison = Comparison(
            self.primary.name, self.candidate.name, op_id, "shadow", primary.status, None,
            primary_ms=primary_s * 1000, request_id=incoming.request_id,
        )  # fmt: skip
        self.metrics.latency.labels("primary", op_id).observe(primary_s)
        try:
            try:  # the requests: they hold one of GATEWAY_SHADOW_MAX_INFLIGHT
                started = time.perf_counter()
                answer = await self._send(self.candidate, scope, headers, body)
                elapsed = time.perf_counter() - started
                comparison.candidate_status = answer.status
                comparison.candidate_ms = elapsed * 1000
                self.metrics.latency.labels("candidate", op_id).observe(elapsed)
                again: tuple[Answer, float] | None = None
                if self._noise_wanted(op_id):
                    self._noise_sent[op_id] = self._noise_sent.get(op_id, 0) + 1
                    started = time.perf_counter()
                    again_answer = await self._send(self.primary, scope, headers, body)
                    again = (again_answer, time.perf_counter() - started)
            finally:
                self._sending -= 1
            # the comparisons: in the worker process, off this event loop
            noise = self._differences(op_id, primary, again[0], body) if again else None
            try:
                found = self._differences(op_id, primary, answer, body)
            except WorkerFull:
                if noise is not None:
                    noise.cancel()
                raise
            if noise is not None and again is not None:
                try:
                    self._noted_noise(op_id, primary, again, await noise)
                except BaseException:
                    found.cancel()  # no longer awaited: its answer is dropped
                    raise
            noisy = self.noise.get(op_id, set())
            comparison.diffs = [diff for diff in await found if diff.pattern not in noisy]
        except WorkerFull:  # GATEWAY_SHADOW_COMPARE_QUEUE comparisons already wait
            self._dropped(op_id, DROPPED_QUEUE)
            return
        except Exception as exc:  # a timeout, a refused connection, a bug: counted, not raised
            comparison.error = f"{type(exc).__name__}: {exc}"[:255]
        outcome = "error" if comparison.error else "match" if comparison.matched else "differs"
        self.metrics.requests.labels(self.candidate.name, op_id, outcome).inc()
        if comparison.diffs:
            self.metrics.differences.labels(self.candidate.name, op_id).inc(len(comparison.diffs))
        if self.store is not None:
            self.store.add(comparison)

    def _noise_wanted(self, op_id: str) -> bool:
        """Send this request to the primary again, to measure its own variation?"""
        return (
            not COMPARATORS[op_id].deterministic
            and self._noise_sent.get(op_id, 0) < self._noise_left
            and self._idle()
            and self._chance() < self._noise_rate
        )

    def _dropped(self, op_id: str, reason: str) -> None:
        self.metrics.requests.labels(self.candidate.name, op_id, reason).inc()
        per_reason = self.drops.setdefault(op_id, dict.fromkeys(DROP_REASONS, 0))
        per_reason[reason] += 1

    def _differences(
        self, op_id: str, primary: Answer, other: Answer, body: bytes
    ) -> asyncio.Future[list[FieldDiff]]:
        """The fields in which two answers differ, as a future.

        Answers with the same status, media type and bytes cannot differ whatever the
        comparator: that common case is settled here, without the round trip to the worker
        process (parsing and walking both bodies there cost ~0.3 ms of CPU per comparison,
        on the cores the primary runs on). Only answers that differ in bytes go there.
        """
        if other == primary:
            same: asyncio.Future[list[FieldDiff]] = asyncio.get_running_loop().create_future()
            same.set_result([])
            return same
        return self.worker.compare(op_id, primary, other, body)

    def _noted_noise(
        self, op_id: str, primary: Answer, again: tuple[Answer, float], diffs: list[FieldDiff]
    ) -> None:
        """The primary answered the same request twice: remember where it differed."""
        self.noise.setdefault(op_id, set()).update(diff.pattern for diff in diffs)
        if self.store is not None:
            answer, elapsed = again
            self.store.add(
                Comparison(
                    self.primary.name,
                    self.primary.name,
                    op_id,
                    "noise",
                    primary.status,
                    answer.status,
                    diffs,
                    primary_ms=0.0,
                    candidate_ms=elapsed * 1000,
                )
            )

    async def _send(
        self, backend: Backend, scope: Scope, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Answer:
        assert self.upstream is not None
        raw_path: bytes | None = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        query: bytes = scope["query_string"]
        url = backend.base_url + path + ("?" + query.decode("latin-1") if query else "")
        async with asyncio.timeout(self._timeouts.read):
            response = await self.upstream.send(
                scope["method"], url, headers, body, self._timeouts, repeatable=True
            )  # mirrors never write
            try:
                parts = []
                size = 0
                async for chunk in response.chunks():
                    size += len(chunk)
                    if size > self._capture_bytes:
                        raise ValueError(f"answer larger than {self._capture_bytes} bytes")
                    parts.append(chunk)
                content = b"".join(parts)
            finally:
                await response.aclose()
        return Answer(response.status, _media_type(response.headers), content)


def _media_type(headers: Any) -> str:
    for name, value in headers:
        if name.lower() == b"content-type":
            return str(value.split(b";", 1)[0].strip().lower().decode("latin-1"))
    return ""
