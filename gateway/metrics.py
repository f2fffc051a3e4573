"""Prometheus metrics per backend and route group (one registry per app)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from shared_schemas.operations import group_of_path
from shared_schemas.request_meta import DOCS_PATHS, HEALTH_PATHS

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Gateway overhead is sub-millisecond; model calls take seconds (transcription: minutes).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# "0.001", ..., "1.0", ..., "+Inf": the le labels prometheus_client itself would write.
_BUCKET_LABELS = (*(repr(float(b)) for b in _BUCKETS), "+Inf")

__all__ = ["CONTENT_TYPE", "GatewayMetrics", "route_group"]


def route_group(path: str) -> str:
    """The API group of a path (``/api/v1/rag/search`` -> ``rag``); labels stay bounded."""
    group = group_of_path(path)
    if group is not None:
        return group
    if path in HEALTH_PATHS:
        return "health"
    if path in DOCS_PATHS or path.startswith(("/docs", "/redoc")):
        return "docs"
    return "other"


class _RequestStats:
    """Request counts and the latency histogram as plain numbers, turned into metrics on scrape.

    ``observe`` runs once per request, so it stays a few dict operations: prometheus_client's
    own Counter and Histogram take a lock per update (the gateway serves on one event loop
    thread, where both observing and scraping happen).
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str, str], int] = {}
        # per (backend, group): one count per bucket (+Inf last), then the sum of seconds
        self.latency: dict[tuple[str, str], list[float]] = {}

    def observe(self, backend: str, group: str, method: str, status: int, seconds: float) -> None:
        key = (backend, group, method if method in _METHODS else "OTHER", str(status))
        self.counts[key] = self.counts.get(key, 0) + 1
        histogram = self.latency.get((backend, group))
        if histogram is None:
            histogram = self.latency[(backend, group)] = [0.0] * (len(_BUCKETS) + 2)
        histogram[bisect.bisect_left(_BUCKETS, seconds)] += 1
        histogram[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "gateway_requests",
            "Requests answered by the gateway.",
            labels=["backend", "route_group", "method", "status"],
        )
        for labels, total in self.counts.items():
            requests.add_metric(list(labels), total)
        yield requests
        latency = HistogramMetricFamily(
            "gateway_request_duration_seconds",
            "Time from request start to the last response byte.",
            labels=["backend", "route_group"],
        )
        for (backend, group), histogram in self.latency.items():
            buckets = cumulative_buckets(_BUCKET_LABELS, histogram)
            latency.add_metric([backend, group], buckets, sum_value=histogram[-1])
        yield latency


class GatewayMetrics:
    """Requests, latency and upstream errors, labelled by backend and route group."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = _RequestStats()
        self.registry.register(self._requests)
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Failed attempts to reach a backend (connect, timeout, protocol, status_502/503).",
            ["backend", "route_group", "kind"],
            registry=self.registry,
        )
        self.rate_limit_fail_open = Counter(
            "gateway_rate_limit_fail_open_total",
            "Requests let through because the rate-limit store was unreachable.",
            registry=self.registry,
        )

        self.budget_fail_open = Counter(
            "gateway_budget_fail_open_total",
            "Budget checks or charges skipped because the budget store (Redis) was unreachable.",
            registry=self.registry,
        )
        self.key_store_unavailable = Counter(
            "gateway_key_store_unavailable_total",
            "API-key lookups answered 503 because Postgres did not answer in time.",
            registry=self.registry,
        )

    def observe(self, backend: str, group: str, method: str, status: int, seconds: float) -> None:
        """Count one request and record its latency."""
        self._requests.observe(backend, group, method, status, seconds)

    def upstream_error(self, backend: str, group: str, kind: str) -> None:
        self.upstream_errors.labels(backend, group, kind).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


def cumulative_buckets(labels: tuple[str, ...], histogram: list[float]) -> list[tuple[str, float]]:
    """Prometheus buckets (label, running count) of a histogram kept as per-bucket counts
    followed by the sum of the observations."""
    cumulative: list[tuple[str, float]] = []
    running = 0.0
    for bound, count in zip(labels, histogram[:-1], strict=True):
        running += count
        cumulative.append((bound, running))
    return cumulative
