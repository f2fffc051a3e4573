"""Shadow mode: mirror a sample of live requests to a candidate backend and compare answers.

``ML_SERVICE_SHADOW=<backend>`` turns it on. After the primary's answer has been sent, a
sampled request and that answer are handed to a worker process (``gateway/shadow_worker.py``,
fire and forget), which sends the request again to the candidate and compares the two
answers by the operation's comparator (``shared_schemas.comparators``), off the gateway's
event loop and its cores' budget: the gateway pays one batched pipe write for it, not an
HTTP exchange. At most ``GATEWAY_SHADOW_MAX_INFLIGHT`` mirrors are sent at a time
(beyond that the worker drops one, never queues it) and at most
``GATEWAY_SHADOW_COMPARE_QUEUE`` are without an outcome in the gateway (beyond that the
gateway drops one); both drops are counted. Nothing of it can delay or fail the primary's answer:
the primary's bodies are only kept (by reference) when sampled and small, and every
shadow failure (the worker's death included) ends in a counter. The outcomes come back
in batches and are counted, timed and stored here.

What is never mirrored: operations that write (``Operation.writes``: the candidate shares
the primary's database, so indexing twice would change real data; they are left to the
contract check), bodies too large to buffer, and anything that is not an operation of the
contract. Mirrored requests carry ``X-Shadow: 1`` next to the gateway secret: the backend
marks its log row shadow, writes no usage and charges nothing. They never pass the
gateway's own rate limiter (the gateway sends them itself).

Noise: for operations declared non-deterministic, a share of the mirrored requests is also
sent to the primary a second time by the worker (a small sample:
``GATEWAY_SHADOW_NOISE_SAMPLES`` per operation, each only when no client request was in
flight through this gateway as it was handed over, since it is work for the primary); the
fields in which the primary differs from itself are not counted against the candidate.
Deterministic operations are never sent twice.

Results go to Postgres (``ml_shadow_comparisons``, ``ml_shadow_examples``: migration 0004)
in batches, off the request path.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import random
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
from gateway.shadow_worker import Answer, Job, MirrorWorker, Result, WorkerConfig, WorkerFull
from gateway.upstream import Upstream
from shared_schemas.comparators import COMPARATORS, FieldDiff, check_comparators
from shared_schemas.operations import Operation, operation_at
from shared_schemas.request_meta import SHADOW_HEADER

log = logging.getLogger("gateway.shadow")
_SHADOW = (SHADOW_HEADER.encode(), b"1")
# Why a sampled request was not compared: two bounds, two outcomes of their own.
DROPPED_INFLIGHT = "dropped_inflight"  # GATEWAY_SHADOW_MAX_INFLIGHT mirrors already sent
DROPPED_QUEUE = "dropped_queue"  # GATEWAY_SHADOW_COMPARE_QUEUE mirrors without an outcome
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
            " dropped_queue (GATEWAY_SHADOW_COMPARE_QUEUE mirrors without outcome: not sent).",
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
    """Decides which requests to mirror, hands them to the worker, records the outcomes."""

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
        self.upstream: Upstream | None = None  # set by the app's lifespan: mirrors start then
        self.metrics = ShadowMetrics(metrics)
        self._rate = settings.shadow_sample_rate
        self._noise_rate = settings.shadow_noise_rate
        self._noise_left = settings.shadow_noise_samples  # per operation
        self._noise_sent: dict[str, int] = {}
        self._idle = idle  # no client request in flight: a second request costs no one
        self._capture_bytes = settings.shadow_capture_bytes
        self._chance = chance
        self._ids = itertools.count()
        self._inflight: set[asyncio.Future[Result]] = set()  # handed over, no outcome yet
        self.worker = MirrorWorker(
            WorkerConfig(
                candidate_url=candidate.base_url,
                primary_url=primary.base_url,
                connect_timeout_s=settings.connect_timeout_s,
                timeout_s=settings.shadow_timeout_s,
                capture_bytes=settings.shadow_capture_bytes,
                max_inflight=settings.shadow_max_inflight,
                keepalive_s=settings.keepalive_s,
            ),
            settings.shadow_compare_queue,
        )
        # per operation and reason: sampled requests not compared, since this process started
        self.drops: dict[str, dict[str, int]] = {}
        self._counters: dict[tuple[str, str], Any] = {}  # metric children, by labels
        self._latencies: dict[tuple[str, str], Any] = {}

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
        """Hand a request whose primary answer has been sent to the worker (returns at once)."""
        op_id = operation.operation_id
        body, answer = outcome.request_body, outcome.response_body
        if (
            body is None
            or answer is None
            or outcome.backend != self.primary.name
            or len(answer) > self._capture_bytes
        ):
            self._count(op_id, "skipped")
            return
        if self.upstream is None:  # the gateway is not started (lifespan not run)
            self._dropped(op_id, DROPPED_INFLIGHT)
            return
        noise = self._noise_wanted(op_id)
        raw_path: bytes | None = scope.get("raw_path")
        query: bytes = scope["query_string"]
        target = raw_path.decode("latin-1") if raw_path else scope["path"]
        if query:
            target += "?" + query.decode("latin-1")
        job = Job(
            next(self._ids), op_id, scope["method"], target, [*incoming.headers, _SHADOW],
            body, Answer(outcome.status, outcome.media_type, answer), noise,
        )  # fmt: skip
        try:
            future = self.worker.submit(job)
        except WorkerFull:  # GATEWAY_SHADOW_COMPARE_QUEUE mirrors already wait for outcomes
            self._dropped(op_id, DROPPED_QUEUE)
            return
        if noise:
            self._noise_sent[op_id] = self._noise_sent.get(op_id, 0) + 1
        self._inflight.add(future)
        comparison = Comparison(
            self.primary.name, self.candidate.name, op_id, "shadow", outcome.status, None,
            primary_ms=primary_s * 1000, request_id=incoming.request_id,
        )  # fmt: skip
        future.add_done_callback(functools.partial(self._finished, comparison))

    async def drain(self) -> None:
        """Wait for the outcomes of the mirrors handed over (shutdown, tests)."""
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
            await asyncio.sleep(0)  # their done callbacks

    async def aclose(self) -> None:
        """Wait for the outcomes (the worker's own bound: 10 s), then stop the worker."""
        await self.worker.aclose()
        await self.drain()

    def _finished(self, comparison: Comparison, future: asyncio.Future[Result]) -> None:
        """A mirror's outcome from the worker: counted, timed and stored."""
        self._inflight.discard(future)
        op_id = comparison.operation_id
        if not future.cancelled() and future.exception() is None and future.result().dropped:
            self._dropped(op_id, DROPPED_INFLIGHT)  # the worker had as many in flight
            return
        self._latency("primary", op_id).observe(comparison.primary_ms / 1000)
        if future.cancelled():
            comparison.error = "CancelledError: the gateway stopped"
        elif (exc := future.exception()) is not None:
            comparison.error = f"{type(exc).__name__}: {exc}"[:255]
        else:
            result = future.result()
            comparison.candidate_status = result.candidate_status
            comparison.candidate_ms = result.candidate_ms
            comparison.diffs = result.diffs
            comparison.error = result.error
            if result.candidate_ms is not None:
                self._latency("candidate", op_id).observe(result.candidate_ms / 1000)
            if result.noise is not None and self.store is not None:
                self.store.add(
                    Comparison(
                        self.primary.name, self.primary.name, op_id, "noise",
                        comparison.primary_status, result.noise.status, result.noise.diffs,
                        primary_ms=0.0, candidate_ms=result.noise.elapsed_ms,
                    )
                )  # fmt: skip
        outcome = "error" if comparison.error else "match" if comparison.matched else "differs"
        self._count(op_id, outcome)
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

    def _count(self, op_id: str, outcome: str) -> None:
        """gateway_shadow_requests_total, its children kept (labels() costs ~4 us a call)."""
        child = self._counters.get((op_id, outcome))
        if child is None:
            child = self.metrics.requests.labels(self.candidate.name, op_id, outcome)
            self._counters[op_id, outcome] = child
        child.inc()

    def _latency(self, side: str, op_id: str) -> Any:
        child = self._latencies.get((side, op_id))
        if child is None:
            child = self._latencies[side, op_id] = self.metrics.latency.labels(side, op_id)
        return child

    def _dropped(self, op_id: str, reason: str) -> None:
        self._count(op_id, reason)
        per_reason = self.drops.setdefault(op_id, dict.fromkeys(DROP_REASONS, 0))
        per_reason[reason] += 1
