"""The gateway's request metrics render as Prometheus counters and histograms."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import GatewayMetrics


def _samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    families = text_string_to_metric_families(metrics.render().decode())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_counts_buckets_and_sums() -> None:
    metrics = GatewayMetrics()
    for seconds in (0.001, 0.003, 0.2, 1000):
        metrics.observe("fast", "rag", "POST", 200, seconds)
    metrics.observe("fast", "rag", "BREW", 418, 0.5)
    samples = _samples(metrics)
    rag = (("backend", "fast"), ("route_group", "rag"))

    def bucket(le: str) -> float:
        labels = tuple(sorted((*rag, ("le", le))))
        return samples[("gateway_request_duration_seconds_bucket", labels)]

    assert bucket("0.001") == 1  # an upper bound is inclusive
    assert bucket("0.005") == 2
    assert bucket("0.25") == 3
    assert bucket("0.5") == 4
    assert bucket("300.0") == 4
    assert bucket("+Inf") == 5
    assert samples[("gateway_request_duration_seconds_count", rag)] == 5
    assert abs(samples[("gateway_request_duration_seconds_sum", rag)] - 1000.704) < 1e-9
    post = (*rag, ("method", "POST"), ("status", "200"))
    other = (*rag, ("method", "OTHER"), ("status", "418"))
    assert samples[("gateway_requests_total", tuple(sorted(post)))] == 4
    assert samples[("gateway_requests_total", tuple(sorted(other)))] == 1, "methods stay bounded"
