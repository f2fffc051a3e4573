"""The runtime's Prometheus metrics, in a registry of their own (one per process).

Framework-free: a backend serves ``render()`` with ``CONTENT_TYPE`` at /metrics. A private
``CollectorRegistry`` rather than the global one, so two engines in one process (tests)
never collide and nothing registers at import time.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# One MiniLM call takes ~5-20 ms (one short text) to ~0.5 s (1024 padded tokens) here.
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


class InferenceMetrics:
    """Queue depth, batch sizes, model seconds, queue wait, rejected and cancelled requests."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queue_depth = Gauge(
            "inference_queue_depth",
            "Items waiting for a batch, per model.",
            ["model"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "inference_batch_size",
            "Items per model call.",
            ["model"],
            buckets=_BATCH_SIZES,
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "inference_seconds",
            "Seconds per model call (one batch), preparation included.",
            ["model"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "inference_queue_seconds",
            "Seconds a request spent waiting rather than in model calls.",
            ["model"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.rejected = Counter(
            "inference_rejected",
            "Requests refused because the model's queue was full (answered 503).",
            ["model"],
            registry=self.registry,
        )
        self.cancelled = Counter(
            "inference_cancelled",
            "Requests dropped before their batch ran because the caller went away.",
            ["model"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
