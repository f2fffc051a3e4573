"""API-key auth (401), Redis rate limits (429 + Retry-After), failing open without Redis."""

from __future__ import annotations

import logging
import secrets

import pytest
import redis

from gateway.rate_limit import retry_after_s
from tests.gateway.conftest import make_settings, run_gateway
from tests.gateway.upstreams import ThreadServer


def test_api_keys_required_except_on_open_paths(fast: ThreadServer) -> None:
    settings = make_settings({"fast": fast.url}, "fast", api_keys="key-one, key-two")
    with run_gateway(settings) as running:
        missing = running.client.get("/api/v1/rag/stats", headers={"X-Request-ID": "a-1"})
        wrong = running.client.get(
            "/api/v1/rag/stats", headers={"Authorization": "Bearer key-three"}
        )
        bearer = running.client.get(
            "/api/v1/rag/stats", headers={"Authorization": "Bearer key-one"}
        )
        header = running.client.get("/api/v1/rag/stats", headers={"X-API-Key": "key-two"})
        open_paths = [running.client.get(p).status_code for p in ("/health", "/ready", "/metrics")]
    assert missing.status_code == 401
    assert missing.json() == {
        "error": {
            "code": "unauthorized",
            "message": "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            "details": [],
        },
        "request_id": "a-1",
    }
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert "invalid API key" in wrong.json()["error"]["message"]
    assert bearer.status_code == 200
    assert header.status_code == 200
    # The gateway's credential is consumed here, not handed to the backend.
    assert "authorization" not in bearer.json()["headers"]
    assert "x-api-key" not in header.json()["headers"]
    assert open_paths == [200, 200, 200]


def test_keys_are_not_logged(fast: ThreadServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings({"fast": fast.url}, "fast", api_keys="very-secret-key")
    with run_gateway(settings) as running:
        running.client.get("/api/v1/rag/stats", headers={"X-API-Key": "very-secret-key"})
        running.client.get("/api/v1/rag/stats", headers={"X-API-Key": "wrong-secret-key"})
    assert "secret-key" not in caplog.text
    assert "secret-key" not in repr(settings)


def test_rate_limit_per_api_key_answers_429_with_retry_after(
    fast: ThreadServer, redis_url: str
) -> None:
    key_a, key_b = secrets.token_hex(8), secrets.token_hex(8)
    settings = make_settings(
        {"fast": fast.url},
        "fast",
        api_keys=f"{key_a},{key_b}",
        redis_url=redis_url,
        rate_limit_per_minute=3,
    )
    with run_gateway(settings) as running:
        statuses = [
            running.client.get("/api/v1/rag/stats", headers={"X-API-Key": key_a}).status_code
            for _ in range(3)
        ]
        limited = running.client.get("/api/v1/rag/stats", headers={"X-API-Key": key_a})
        other_key = running.client.get("/api/v1/rag/stats", headers={"X-API-Key": key_b})
        metrics = running.client.get("/metrics").text
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert other_key.status_code == 200
    assert 'method="GET",route_group="rag",status="429"} 1.0' in metrics
    keys = redis.Redis.from_url(redis_url).keys("gw:rl:*")
    assert keys, "no counters in Redis"
    assert not any(key_a.encode() in k for k in keys), "raw API key stored in Redis"


def test_rate_limit_per_client_ip(fast: ThreadServer, redis_url: str) -> None:
    store = redis.Redis.from_url(redis_url)
    for key in store.keys("gw:rl:ip:127.0.0.1:*"):
        store.delete(key)
    settings = make_settings(
        {"fast": fast.url}, "fast", redis_url=redis_url, rate_limit_per_minute=2
    )
    with run_gateway(settings) as running:
        statuses = [running.client.get("/api/v1/rag/stats").status_code for _ in range(3)]
        health = running.client.get("/health").status_code
    assert statuses == [200, 200, 429]
    assert health == 200


def test_redis_down_fails_open_with_a_log_line(
    fast: ThreadServer, dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.rate_limit")
    redis_down = dead_url.replace("http://", "redis://") + "/0"
    settings = make_settings(
        {"fast": fast.url}, "fast", redis_url=redis_down, rate_limit_per_minute=1
    )
    with run_gateway(settings) as running:
        statuses = [running.client.get("/api/v1/rag/stats").status_code for _ in range(3)]
        metrics = running.client.get("/metrics").text
    assert statuses == [200, 200, 200]
    assert "rate limit store unreachable" in caplog.text
    assert "gateway_rate_limit_fail_open_total 3.0" in metrics


@pytest.mark.parametrize(
    ("current", "previous", "elapsed", "expected"),
    [
        (10, 0, 15.0, 45),  # this minute is full: wait for the next one
        (10, 50, 59.5, 1),  # never less than one second
        (5, 10, 0.0, 30),  # 10 * (1 - t/60) + 5 < 10  <=>  t > 30
        (5, 10, 20.0, 10),
    ],
)
def test_retry_after(current: int, previous: int, elapsed: float, expected: int) -> None:
    assert retry_after_s(10, current, previous, elapsed) == expected
