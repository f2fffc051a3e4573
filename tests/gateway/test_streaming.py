"""Bodies stream both ways through the gateway; the body limit answers 413."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.conftest import RunningGateway, make_settings, run_gateway
from tests.gateway.upstreams import CHUNK, ThreadServer

UPLOAD_BYTES = 30 * 1024 * 1024


def _upload(total: int, seen_early: list[bool], upstream: ThreadServer) -> Iterator[bytes]:
    """Yield ``total`` bytes; halfway, wait until the upstream already holds some of them."""
    block = b"\x01\x02audio\x03" * (CHUNK // 8)
    sent = 0
    while sent < total:
        yield block
        sent += len(block)
        if sent == total // 2:
            deadline = time.monotonic() + 10
            while upstream.app.state.received_bytes == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_early.append(upstream.app.state.received_bytes > 0)


def test_large_upload_streams_before_it_is_complete(
    gateway: RunningGateway, fast: ThreadServer
) -> None:
    fast.app.state.received_bytes = 0
    seen_early: list[bool] = []
    block = b"\x01\x02audio\x03" * (CHUNK // 8)
    expected = hashlib.sha256(block * (UPLOAD_BYTES // len(block))).hexdigest()
    response = gateway.client.post(
        "/api/v1/transcription/transcribe",
        content=_upload(UPLOAD_BYTES, seen_early, fast),
        headers={"Content-Length": str(UPLOAD_BYTES), "Content-Type": "audio/wav"},
    )
    assert response.status_code == 200, response.text
    assert seen_early == [True], "the upstream got nothing until the whole upload was sent"
    echoed = response.json()
    assert echoed["body_bytes"] == UPLOAD_BYTES
    assert echoed["body_sha256"] == expected
    assert echoed["headers"]["content-length"] == str(UPLOAD_BYTES)


def test_chunked_upload_without_length_streams(gateway: RunningGateway, fast: ThreadServer) -> None:
    fast.app.state.received_bytes = 0
    seen_early: list[bool] = []
    response = gateway.client.post(
        "/api/v1/transcription/convert", content=_upload(8 * 1024 * 1024, seen_early, fast)
    )
    assert response.status_code == 200
    assert seen_early == [True]
    assert response.json()["body_bytes"] == 8 * 1024 * 1024


def test_large_download_streams(gateway: RunningGateway, fast: ThreadServer) -> None:
    block = bytes(range(256)) * (CHUNK // 256)
    expected = hashlib.sha256(block * (32 * 1024 * 1024 // CHUNK)).hexdigest()
    digest, size, done_at_first_chunk = hashlib.sha256(), 0, None
    with gateway.client.stream("GET", "/api/v1/transcription/convert?stream_mb=32") as response:
        assert response.headers["content-length"] == str(32 * 1024 * 1024)
        for chunk in response.iter_raw():
            if done_at_first_chunk is None:
                done_at_first_chunk = fast.app.state.stream_done
            digest.update(chunk)
            size += len(chunk)
    assert done_at_first_chunk is False, "the gateway buffered the whole response"
    assert size == 32 * 1024 * 1024
    assert digest.hexdigest() == expected


def test_backend_dying_mid_response_truncates_instead_of_hanging(
    gateway: RunningGateway,
) -> None:
    received: list[int] = []
    path = "/api/v1/transcription/convert?stream_mb=8&abort_after_mb=2"
    with gateway.client.stream("GET", path) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            received.extend(len(chunk) for chunk in response.iter_raw())
    assert 0 < sum(received) < 8 * 1024 * 1024
    metrics = gateway.client.get("/metrics").text
    assert 'gateway_upstream_errors_total{backend="fast",kind="protocol",' in metrics


def test_declared_length_over_limit_is_413_without_contacting_backend(
    fast: ThreadServer,
) -> None:
    settings = make_settings({"fast": fast.url}, "fast", max_body_bytes=1024 * 1024)
    with run_gateway(settings) as running:
        before = fast.app.state.requests
        response = running.client.post(
            "/api/v1/transcription/transcribe",
            content=b"x" * (1024 * 1024 + 1),
            headers={"X-Request-ID": "big-1"},
        )
    assert response.status_code == 413
    body = response.json()
    assert body["error"]["code"] == "payload_too_large"
    assert body["request_id"] == "big-1"
    assert fast.app.state.requests == before


def test_streamed_body_over_limit_is_413(fast: ThreadServer) -> None:
    """A chunked body carries no length: the limit is enforced while it streams."""
    settings = make_settings({"fast": fast.url}, "fast", max_body_bytes=64 * 1024)
    with run_gateway(settings) as running:
        response = running.client.post(
            "/api/v1/transcription/transcribe", content=iter([b"y" * 16384] * 8)
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_backend_refusing_an_upload_early_answers_at_once(
    gateway: RunningGateway, fast: ThreadServer
) -> None:
    """The backend's own 413 comes back while the upload is still going, not a late 504."""
    total = 24 * 1024 * 1024
    started = time.monotonic()
    response = gateway.client.post(
        "/api/v1/transcription/transcribe?reject_over=1024",
        content=iter([b"a" * CHUNK] * (total // CHUNK)),
        headers={"Content-Length": str(total), "Content-Type": "audio/wav"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.headers["x-ml-backend"] == "fast"
    assert time.monotonic() - started < 30


def test_client_gone_mid_upload_frees_the_backend_connection(fast: ThreadServer) -> None:
    """The half-sent upload is dropped (499 in the metrics) and the pool slot comes back."""
    settings = make_settings({"fast": fast.url}, "fast", pool_size=1)
    with run_gateway(settings) as running:
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(
                b"POST /api/v1/transcription/transcribe HTTP/1.1\r\nhost: gw\r\n"
                b"content-type: audio/wav\r\ncontent-length: 10000000\r\n\r\n" + b"a" * CHUNK
            )
            deadline = time.monotonic() + 10
            while fast.app.state.received_bytes == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
        deadline = time.monotonic() + 10
        metrics = ""
        while 'status="499"' not in metrics and time.monotonic() < deadline:
            time.sleep(0.05)
            metrics = running.client.get("/metrics").text
        assert 'method="POST",route_group="transcription",status="499"' in metrics
        # with one pooled connection, this only passes if the dropped upload released it
        assert running.client.get("/api/v1/rag/stats", timeout=5).status_code == 200
