"""Shadow mode: mirror a sample of live requests to a candidate backend and compare answers.

``ML_SERVICE_SHADOW=<backend>`` turns it on. After the primary's answer has been sent, a
sampled request and that answer are handed to a worker process (``gateway/shadow_worker.py``,
fire and forget), which owns the outcome from there: it sends the request again to the
candidate, compares the two answers by the operation's comparator
(``shared_schemas.comparators``), writes the result to Postgres and counts it, off the
gateway's event loop and its cores' budget. The gateway pays a batched pipe write per
mirror and, every ``TALLY_S``, merges the worker's counts into its own /metrics. At most
``GATEWAY_SHADOW_MAX_INFLIGHT`` mirrors are sent at a time (beyond that the worker drops
one, never queues it) and at most ``GATEWAY_SHADOW_COMPARE_QUEUE`` are held by the gateway
for the worker (beyond that the gateway drops one); both drops are counted. Nothing of it
can delay or fail the primary's answer: the primary's bodies are only kept (by reference)
when sampled and small, and every shadow failure (the worker's death included) ends in a
counter.

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

Results go to Postgres (``ml_shadow_comparisons``, ``ml_shadow_examples``: migration 0004,
``gateway/shadow_store.py``) in batches, written by the worker; the report asks it to
write what it holds first.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from starlette.types import Scope

from gateway.headers import Incoming
from gateway.metrics import GatewayMetrics, cumulative_buckets
from gateway.registry import Backend, BackendRegistry
from gateway.settings import GatewayConfigError, GatewaySettings
from gateway.shadow_worker import (
    DROP_REASONS,
    DROPPED_INFLIGHT,
    DROPPED_QUEUE,
    ERROR,
    LATENCY_BUCKETS,
    SKIPPED,
    Answer,
    Job,
    MirrorWorker,
    Tally,
    WorkerConfig,
    WorkerFull,
)
from gateway.upstream import Upstream
from shared_schemas.comparators import COMPARATORS, check_comparators
from shared_schemas.operations import Operation, operation_at
from shared_schemas.request_meta import SHADOW_HEADER

log = logging.getLogger("gateway.shadow")
_SHADOW = (SHADOW_HEADER.encode(), b"1")
# "0.005", ..., "+Inf": the le labels prometheus_client itself would write.
_BUCKET_LABELS = (*(repr(float(b)) for b in LATENCY_BUCKETS), "+Inf")


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


class ShadowMetrics:
    """The shadow's counts and latencies on the gateway's /metrics, from one ``Tally``: the
    worker's merged in as they come, the gateway's own outcomes (skipped, dropped_queue,
    lost with the worker) added to it. Operations bound the labels."""

    def __init__(self, metrics: GatewayMetrics, candidate: str) -> None:
        self.candidate = candidate
        self.tally = Tally()
        metrics.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "gateway_shadow_requests",
            "Mirrored requests by outcome: match, differs, error, skipped (not captured),"
            " dropped_inflight (GATEWAY_SHADOW_MAX_INFLIGHT mirrors in flight: not sent),"
            " dropped_queue (GATEWAY_SHADOW_COMPARE_QUEUE mirrors held: not sent).",
            labels=["candidate", "operation", "outcome"],
        )
        for (op_id, outcome), total in sorted(self.tally.counts.items()):
            requests.add_metric([self.candidate, op_id, outcome], total)
        yield requests
        differences = CounterMetricFamily(
            "gateway_shadow_field_differences",
            "Fields in which the candidate's answer differed (beyond the primary's noise).",
            labels=["candidate", "operation"],
        )
        for op_id, total in sorted(self.tally.differences.items()):
            differences.add_metric([self.candidate, op_id], total)
        yield differences
        latency = HistogramMetricFamily(
            "gateway_shadow_duration_seconds",
            "Latency of mirrored requests: the primary's answer and the candidate's.",
            labels=["side", "operation"],
        )
        for (side, op_id), histogram in sorted(self.tally.latency.items()):
            buckets = cumulative_buckets(_BUCKET_LABELS, histogram)
            latency.add_metric([side, op_id], buckets, sum_value=histogram[-1])
        yield latency


class ShadowMirror:
    """Decides which requests to mirror and hands them to the worker, which settles them."""

    def __init__(
        self,
        settings: GatewaySettings,
        primary: Backend,
        candidate: Backend,
        metrics: GatewayMetrics,
        chance: Callable[[], float] = random.random,
        idle: Callable[[], bool] = lambda: True,
    ) -> None:
        check_comparators()
        self.primary = primary
        self.candidate = candidate
        self.upstream: Upstream | None = None  # set by ``start`` (the app's lifespan)
        self.metrics = ShadowMetrics(metrics, candidate.name)
        self._rate = settings.shadow_sample_rate
        self._noise_rate = settings.shadow_noise_rate
        self._noise_left = settings.shadow_noise_samples  # per operation
        self._noise_sent: dict[str, int] = {}
        self._idle = idle  # no client request in flight: a second request costs no one
        self._capture_bytes = settings.shadow_capture_bytes
        self._chance = chance
        self.worker = MirrorWorker(
            WorkerConfig(
                primary_name=primary.name,
                candidate_name=candidate.name,
                candidate_url=candidate.base_url,
                primary_url=primary.base_url,
                connect_timeout_s=settings.connect_timeout_s,
                timeout_s=settings.shadow_timeout_s,
                capture_bytes=settings.shadow_capture_bytes,
                max_inflight=settings.shadow_max_inflight,
                keepalive_s=settings.keepalive_s,
                database_url=settings.database_url or None,
                flush_interval_s=settings.shadow_flush_interval_s,
                examples_per_field=settings.shadow_examples_per_field,
                buffer_rows=settings.shadow_buffer_rows,
            ),
            settings.shadow_compare_queue,
            on_tally=self.metrics.tally.merge,
            on_lost=self._lost,
        )

    @property
    def drops(self) -> dict[str, dict[str, int]]:
        """Per operation and reason: sampled requests not compared, since this process started."""
        out: dict[str, dict[str, int]] = {}
        for (op_id, outcome), n in self.metrics.tally.counts.items():
            if outcome in DROP_REASONS:
                out.setdefault(op_id, dict.fromkeys(DROP_REASONS, 0))[outcome] += n
        return out

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
        tally = self.metrics.tally
        if (
            body is None
            or answer is None
            or outcome.backend != self.primary.name
            or len(answer) > self._capture_bytes
        ):
            tally.count(op_id, SKIPPED)
            return
        if self.upstream is None:  # the gateway is not started (lifespan not run)
            tally.count(op_id, DROPPED_INFLIGHT)
            return
        noise = self._noise_wanted(op_id)
        raw_path: bytes | None = scope.get("raw_path")
        query: bytes = scope["query_string"]
        target = raw_path.decode("latin-1") if raw_path else scope["path"]
        if query:
            target += "?" + query.decode("latin-1")
        job = Job(
            op_id, scope["method"], target, [*incoming.headers, _SHADOW], body,
            Answer(outcome.status, outcome.media_type, answer), noise, incoming.request_id,
            primary_s * 1000,
        )  # fmt: skip
        try:
            self.worker.submit(job)
        except WorkerFull:  # GATEWAY_SHADOW_COMPARE_QUEUE mirrors are held already
            tally.count(op_id, DROPPED_QUEUE)
            return
        if noise:
            self._noise_sent[op_id] = self._noise_sent.get(op_id, 0) + 1

    async def start(self, upstream: Upstream) -> None:
        """The gateway's lifespan, before the first request: mirrors start, the worker
        process is started and waited for (so the first mirrors are not dropped while it
        starts; a worker that does not start costs the primary nothing: counted later)."""
        self.upstream = upstream
        await self.worker.start()

    async def flush(self) -> None:
        """Have the worker write the results it holds (before the report reads them)."""
        await self.worker.flush()

    async def aclose(self) -> None:
        """The worker finishes its mirrors and writes their results (10 s at most), then stops."""
        await self.worker.aclose()

    def _lost(self, lost: dict[str, int], why: str) -> None:
        """Mirrors handed over that will have no outcome: errors."""
        log.warning("%d shadow mirrors lost: %s", sum(lost.values()), why)
        for op_id, n in lost.items():
            self.metrics.tally.count(op_id, ERROR, n)

    def _noise_wanted(self, op_id: str) -> bool:
        """Send this request to the primary again, to measure its own variation?"""
        return (
            not COMPARATORS[op_id].deterministic
            and self._noise_sent.get(op_id, 0) < self._noise_left
            and self._idle()
            and self._chance() < self._noise_rate
        )
