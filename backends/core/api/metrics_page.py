"""A backend process's /metrics page and its Server-Timing header.

/metrics is Prometheus text: the inference runtime's registry (queue depth, batch sizes,
model seconds, rejected and cancelled requests), the request-log writer's counts and the
response cache's hits and misses, all of this process. Like the health paths it leaves no
request-log row, and it is not one of the contract's operations (an operator's page, as
the gateway's own /metrics is).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from prometheus_client import Counter, Gauge
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backends.core.inference.metrics import CONTENT_TYPE, InferenceMetrics
from backends.core.inference.timing import RequestTiming
from backends.core.persistence.write_policy import WriterCounts

__all__ = ["CONTENT_TYPE", "ProcessMetrics", "server_timing"]


class _WriterCollector(Collector):
    """The request-log writer's counts, read when scraped (the writer keeps plain ints)."""

    def __init__(self, counts: Callable[[], WriterCounts]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        counts = self._counts()
        for name, value, text in (
            ("written", counts.written, "Request-log rows committed."),
            ("refused", counts.refused, "Request-log rows the database refused (dropped)."),
            ("overflowed", counts.overflowed, "Request-log rows dropped: the buffer was full."),
        ):
            yield CounterMetricFamily(f"request_log_{name}", text, value=value)
        yield GaugeMetricFamily(
            "request_log_pending", "Request-log rows accepted, not written yet.", counts.pending
        )


class ProcessMetrics:
    """Everything this process reports at /metrics, in the runtime's registry."""

    def __init__(
        self,
        inference: InferenceMetrics,
        writer_counts: Callable[[], WriterCounts] | None = None,
    ) -> None:
        self._inference = inference
        self._cache = Counter(
            "response_cache_lookups",
            "Response-cache lookups of cacheable requests, by result (hit or miss).",
            ["result"],
            registry=inference.registry,
        )
        # Children made once: .labels() takes a lock and a dict lookup per call.
        self._hit = self._cache.labels("hit")
        self._miss = self._cache.labels("miss")
        if writer_counts is not None:
            inference.registry.register(_WriterCollector(writer_counts))
        # Every gunicorn worker answers /metrics for itself alone: the pid says which one
        # did (a scraper behind one port tells the workers apart by it). Built after fork.
        Gauge(
            "backend_process_id",
            "The id of the process that answered.",
            registry=inference.registry,
        ).set(os.getpid())

    def cache_lookup(self, hit: bool) -> None:
        """Count one lookup of the response cache."""
        (self._hit if hit else self._miss).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition (served with ``CONTENT_TYPE``)."""
        return self._inference.render()


def server_timing(timing: RequestTiming, total_s: float) -> str | None:
    """The ``Server-Timing`` value of a request that ran model calls, else None.

    queue: waiting for a batch; inference: inside the batches that carried the request;
    total: the backend's handling of the request (body read to answer built), in ms.
    """
    if not timing.calls:
        return None
    return (
        f"queue;dur={timing.queue_s * 1000:.2f}, "
        f"inference;dur={timing.inference_s * 1000:.2f}, "
        f"total;dur={total_s * 1000:.2f}"
    )
