"""Routing to the selected backend, headers, request ids, own endpoints, start-up failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devinfra.processes import running_service
from gateway.app import create_app
from gateway.headers import read_request
from gateway.registry import build_registry
from gateway.settings import GatewayConfigError, GatewaySettings
from tests.gateway.conftest import RunningGateway, make_settings, run_gateway
from tests.gateway.upstreams import ThreadServer


def test_routes_to_selected_backend_with_path_query_and_body(gateway: RunningGateway) -> None:
    response = gateway.client.post(
        "/api/v1/embeddings/generate?x=1&y=a%20b", json={"text": "hello"}
    )
    assert response.status_code == 200
    assert response.headers["x-ml-backend"] == "fast"
    echoed = response.json()
    assert echoed["backend"] == "fast"
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/api/v1/embeddings/generate"
    assert echoed["query"] == "x=1&y=a%20b"
    assert echoed["body_bytes"] == len(b'{"text":"hello"}')


@pytest.mark.parametrize(
    ("framing", "bodyless"),
    [
        ([], True),
        ([(b"content-length", b"0")], True),
        ([(b"content-length", b"5")], False),
        ([(b"transfer-encoding", b"chunked")], False),
    ],
)
def test_a_request_without_framing_headers_has_no_body(
    framing: list[tuple[bytes, bytes]], bodyless: bool
) -> None:
    # The forwarder reads no body (and arms no body timeout) for a bodyless request.
    scope = {"headers": [(b"host", b"gw"), *framing], "path": "/x", "client": ("10.0.0.1", 5)}
    assert read_request(scope, strip_credentials=False).bodyless is bodyless


def test_bodies_are_forwarded_whatever_the_method(gateway: RunningGateway) -> None:
    sized = gateway.client.request("GET", "/api/v1/rag/stats", content=b"hello")
    assert sized.json()["body_bytes"] == 5
    chunked = gateway.client.request("DELETE", "/api/v1/rag/x", content=iter([b"ab", b"cde"]))
    assert chunked.json()["body_bytes"] == 5
    assert gateway.client.get("/api/v1/rag/stats").json()["body_bytes"] == 0


def test_switching_backend_is_configuration_only(fast: ThreadServer, other: ThreadServer) -> None:
    backends = {"fast": fast.url, "other": other.url}
    with run_gateway(make_settings(backends, "other")) as running:
        response = running.client.get("/api/v1/rag/stats")
    assert response.headers["x-ml-backend"] == "other"
    assert response.json()["backend"] == "other"


def test_docs_and_openapi_are_proxied(gateway: RunningGateway) -> None:
    for path in ("/openapi.json", "/docs"):
        response = gateway.client.get(path)
        assert response.json()["path"] == path
        assert response.headers["x-ml-backend"] == "fast"


def test_forwarded_headers_added_and_hop_by_hop_stripped(gateway: RunningGateway) -> None:
    response = gateway.client.get(
        "/api/v1/complexity/scale",
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "must-not-pass",
            "TE": "trailers",
            "Proxy-Authorization": "Basic abc",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Host": "spoofed.example",
            "X-Custom": "kept",
        },
    )
    seen = response.json()["headers"]
    for hop in ("x-secret-hop", "te", "proxy-authorization", "connection", "keep-alive"):
        assert hop not in seen, hop
    assert seen["x-custom"] == "kept"
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == gateway.url.removeprefix("http://")
    assert seen["host"] != seen["x-forwarded-host"]  # the upstream sees its own host
    # Response side: the upstream's hop-by-hop header is gone, its own headers stay.
    assert "keep-alive" not in response.headers
    assert response.headers["x-upstream"] == "yes"
    assert response.headers.get_list("server") == ["uvicorn"]


def test_request_id_kept_when_given_and_forwarded(gateway: RunningGateway) -> None:
    response = gateway.client.get("/api/v1/rag/stats", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["headers"]["x-request-id"] == "abc-123"


def test_request_id_generated_when_missing_or_invalid(gateway: RunningGateway) -> None:
    first = gateway.client.get("/api/v1/rag/stats")
    second = gateway.client.get("/api/v1/rag/stats", headers={"X-Request-ID": "has space"})
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2
    assert "has space" not in ids
    assert first.json()["headers"]["x-request-id"] == first.headers["x-request-id"]
    assert all(len(i) == 32 for i in ids)


def test_own_health_is_not_proxied(gateway: RunningGateway, fast: ThreadServer) -> None:
    before = fast.app.state.requests
    body = gateway.client.get("/health").json()
    assert body["status"] == "ok"
    assert body["service"] == "gateway"
    assert body["backend"] == "fast"
    assert body["version"]
    assert fast.app.state.requests == before


def test_ready_follows_the_backend(gateway: RunningGateway, fast: ThreadServer) -> None:
    ready = gateway.client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["backend:fast"]["ok"] is True
    fast.app.state.ready = False
    try:
        not_ready = gateway.client.get("/ready", headers={"X-Request-ID": "r-1"})
    finally:
        fast.app.state.ready = True
    assert not_ready.status_code == 503
    body = not_ready.json()
    assert body["error"]["code"] == "service_unavailable"
    assert body["request_id"] == "r-1"
    assert body["error"]["details"][0]["loc"] == ["checks", "backend:fast"]
    assert body["error"]["details"][0]["type"] == "check_failed"


def test_own_routes_are_get_only(gateway: RunningGateway) -> None:
    response = gateway.client.post("/health")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_metrics_count_requests_per_backend_and_group(gateway: RunningGateway) -> None:
    gateway.client.post("/api/v1/analysis/sentiment", json={"text": "x"})
    gateway.client.post("/api/v1/analysis/sentiment", json={"text": "y"})
    response = gateway.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'gateway_requests_total{backend="fast",method="POST",route_group="analysis",status="200"}'
        " 2.0" in text
    )
    assert 'gateway_request_duration_seconds_count{backend="fast",route_group="analysis"} 2.0' in (
        text
    )
    assert "gateway_upstream_errors_total" in text


def test_unknown_backend_fails_at_start_listing_known_names() -> None:
    settings = make_settings({"mine": "http://10.0.0.5:9000"}, "nope")
    with pytest.raises(GatewayConfigError) as info:
        create_app(settings)
    assert "nope" in str(info.value)
    assert "django, fastapi, mine" in str(info.value)


def test_unknown_backend_fails_the_process_with_a_clear_message() -> None:
    env = {**os.environ, "ML_SERVICE_BACKEND": "nope", "GATEWAY_PORT": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "gateway"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "'nope' is not a known backend; known backends: django, fastapi" in done.stderr


def test_backends_added_by_configuration_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_BACKEND_EDGE_URL", "http://10.0.0.9:7000/")
    monkeypatch.setenv("ML_BACKENDS", '{"mine": "http://10.0.0.5:9000", "django": "http://d:1"}')
    monkeypatch.setenv("ML_SERVICE_BACKEND", "Mine")
    monkeypatch.setenv("ML_SERVICE_FALLBACK", "edge")
    monkeypatch.setenv("GATEWAY_TIMEOUTS", '{"analysis": 10}')
    monkeypatch.setenv("GATEWAY_API_KEYS", " k1, k2 ,")
    monkeypatch.setenv("PORT", "8123")
    settings = GatewaySettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.timeout_for("analysis") == 10
    assert settings.timeout_for("transcription") == 600  # the other defaults stay
    assert settings.timeout_for("rag") == settings.default_timeout_s
    assert settings.api_key_list == ["k1", "k2"]
    assert settings.port == 8123
    registry = build_registry(settings)
    assert registry.fallback is not None and registry.fallback.name == "edge"
    assert registry.selected.name == "mine"
    assert registry.backends["edge"].base_url == "http://10.0.0.9:7000"
    assert registry.backends["django"].base_url == "http://d:1"
    assert registry.backends["fastapi"].base_url == "http://127.0.0.1:8001"


def test_invalid_backend_url_is_rejected() -> None:
    with pytest.raises(GatewayConfigError, match="invalid URL"):
        build_registry(make_settings({"bad": "ftp://x"}, "bad"))


def test_python_m_gateway_serves_with_uvloop(fast: ThreadServer, tmp_path: Path) -> None:
    env = {"ML_BACKENDS": f'{{"fast": "{fast.url}"}}', "ML_SERVICE_BACKEND": "fast"}
    env |= {"GATEWAY_API_KEYS": "", "GATEWAY_RATE_LIMIT_PER_MINUTE": "0"}
    with running_service("gateway", env, tmp_path, ready_timeout_s=30) as service:
        response = httpx.get(service.base_url + "/api/v1/transcription/formats")
        assert response.headers["x-ml-backend"] == "fast"
        assert response.json()["path"] == "/api/v1/transcription/formats"
