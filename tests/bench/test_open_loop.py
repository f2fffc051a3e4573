"""The open-loop generator sends at the offered rate and counts what is not a 2xx."""

from __future__ import annotations

from bench import open_loop
from tests.gateway.upstreams import EchoUpstream, serving


def test_requests_go_out_at_the_offered_rate_and_errors_are_counted() -> None:
    with serving(EchoUpstream("echo")) as server:
        mix: list[open_loop.Request] = [
            (3, "POST", "/api/v1/anything", '{"a": 1}'),
            (1, "POST", "/api/v1/anything?status=503", "{}"),
        ]
        result = open_loop.run(server.url, mix, rate=200, duration_s=1, connections=8)
    assert result.sent == 200
    assert result.answered == 200
    assert result.errors == 50  # one request in four answered 503
    assert 0.9 < result.duration_s < 5
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms
