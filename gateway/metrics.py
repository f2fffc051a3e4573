"""Prometheus metrics per backend and route group (one registry per app, children cached)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

API_GROUPS = frozenset({"embeddings", "rag", "analysis", "complexity", "transcription"})
_HEALTH_PATHS = frozenset({"/health", "/ready", "/live"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Gateway overhead is sub-millisecond; model calls take seconds (transcription: minutes).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

__all__ = ["CONTENT_TYPE", "GatewayMetrics", "route_group"]


def route_group(path: str) -> str:
    """The API group of a path (``/api/v1/rag/search`` -> ``rag``); labels stay bounded."""
    if path.startswith("/api/v1/"):
        group = path[8:].split("/", 1)[0]
        return group if group in API_GROUPS else "other"
    if path in _HEALTH_PATHS:
        return "health"
    if path == "/openapi.json" or path.startswith(("/docs", "/redoc")):
        return "docs"
    return "other"


class GatewayMetrics:
    """Requests, latency and upstream errors, labelled by backend and route group."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests_total",
            "Requests answered by the gateway.",
            ["backend", "route_group", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request start to the last response byte.",
            ["backend", "route_group"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
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
        # labels() hashes and locks on every call: keep the children we already made.
        self._request_children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}

    def observe(self, backend: str, group: str, method: str, status: int, seconds: float) -> None:
        """Count one request and record its latency."""
        key = (backend, group, method if method in _METHODS else "OTHER", status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(*key[:3], str(status)),
                self.latency.labels(backend, group),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def upstream_error(self, backend: str, group: str, kind: str) -> None:
        self.upstream_errors.labels(backend, group, kind).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
