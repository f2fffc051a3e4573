"""Backend down -> 502 fast and recovery, slow backend -> 504 per route group, fallback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from devinfra.ports import free_port, wait_for_port
from devinfra.processes import stop_process
from tests.gateway.conftest import make_settings, run_gateway
from tests.gateway.upstreams import ThreadServer, serving

REPO_ROOT = Path(__file__).resolve().parents[2]


def _start_upstream(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.gateway.upstreams", "killable"],
            env={**os.environ, "PORT": str(port)},
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for_port("127.0.0.1", port, timeout_s=20)
    return process


@pytest.fixture
def killable(tmp_path: Path) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    port = free_port()
    processes = [_start_upstream(port, tmp_path / "upstream.log")]
    yield port, processes
    for process in processes:
        stop_process(process, timeout_s=5)


def test_backend_killed_mid_traffic_gives_fast_502_then_recovers(
    killable: tuple[int, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    port, processes = killable
    settings = make_settings({"k": f"http://127.0.0.1:{port}"}, "k")
    results: list[tuple[int, float]] = []
    stop = threading.Event()

    def traffic(client: httpx.Client) -> None:
        while not stop.is_set():
            start = time.monotonic()
            status = client.get("/api/v1/rag/stats").status_code
            results.append((status, time.monotonic() - start))

    with run_gateway(settings) as running:
        workers = [threading.Thread(target=traffic, args=(running.client,)) for _ in range(3)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(0.5)
            processes[0].kill()  # SIGKILL: connections die without a goodbye
            processes[0].wait()
            time.sleep(0.8)
            during = len(results)
            processes.append(_start_upstream(port, tmp_path / "upstream.log"))
            time.sleep(0.5)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=10)
        down = running.client.get("/metrics").text

    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 502}, set(statuses)
    assert 502 in statuses[:during]
    assert statuses[-1] == 200, "no recovery after the backend came back"
    assert max(seconds for status, seconds in results if status == 502) < 1.0
    assert 'gateway_upstream_errors_total{backend="k",kind="connect",route_group="rag"}' in down


def test_backend_down_answers_502_in_the_error_shape(dead_url: str) -> None:
    with run_gateway(make_settings({"dead": dead_url}, "dead")) as running:
        start = time.monotonic()
        response = running.client.get("/api/v1/rag/stats", headers={"X-Request-ID": "d-1"})
        elapsed = time.monotonic() - start
        ready = running.client.get("/ready")
    assert elapsed < 1.0
    assert response.status_code == 502
    assert response.headers["x-ml-backend"] == "dead"
    assert response.json() == {
        "error": {"code": "bad_gateway", "message": "backend 'dead' is unreachable", "details": []},
        "request_id": "d-1",
    }
    assert ready.status_code == 503


def test_timeout_per_route_group(fast: ThreadServer) -> None:
    timeouts = {"analysis": 0.4, "transcription": 5.0}
    settings = make_settings({"fast": fast.url}, "fast", timeouts=timeouts)
    with run_gateway(settings) as running:
        start = time.monotonic()
        slow = running.client.post("/api/v1/analysis/summarize?sleep=2", json={"text": "x"})
        elapsed = time.monotonic() - start
        patient = running.client.post("/api/v1/transcription/transcribe?sleep=1", content=b"a")
    assert slow.status_code == 504
    assert slow.json()["error"]["code"] == "gateway_timeout"
    assert 0.3 < elapsed < 1.5
    assert patient.status_code == 200


def test_fallback_on_connect_error(dead_url: str, other: ThreadServer) -> None:
    backends = {"dead": dead_url, "other": other.url}
    settings = make_settings(backends, "dead", fallback="other", buffer_body_bytes=100_000)
    with run_gateway(settings) as running:
        got = running.client.get("/api/v1/embeddings/models")
        posted = running.client.post("/api/v1/embeddings/generate", json={"text": "t"})
        buffered = running.client.post(
            "/api/v1/transcription/transcribe", content=iter([b"a" * 1000] * 4)
        )
        streamed = running.client.post(
            "/api/v1/transcription/transcribe", content=iter([b"a" * 65536] * 4)
        )
        ready = running.client.get("/ready").json()
    assert got.status_code == 200
    assert got.headers["x-ml-backend"] == "other"
    # Nothing reached the dead backend, and the small body is still in hand: safe to resend.
    assert posted.status_code == 200
    assert posted.headers["x-ml-backend"] == "other"
    # A chunked body small enough to be read whole before sending is in hand too.
    assert buffered.status_code == 200
    assert buffered.headers["x-ml-backend"] == "other"
    # A body larger than the buffer is streamed and cannot be replayed: no fallback.
    assert streamed.status_code == 502
    assert streamed.headers["x-ml-backend"] == "dead"
    assert ready["status"] == "degraded"


def test_fallback_on_503_only_for_requests_that_may_repeat(
    fast: ThreadServer, other: ThreadServer
) -> None:
    """GETs and operations that write nothing go to the fallback; a write is never repeated."""
    backends = {"fast": fast.url, "other": other.url}
    settings = make_settings(backends, "fast", fallback="other")
    with run_gateway(settings) as running:
        got = running.client.get("/api/v1/rag/collections?status_fast=503")
        searched = running.client.post("/api/v1/rag/search?status_fast=503", json={"query": "q"})
        indexed = running.client.post("/api/v1/rag/index?status_fast=503", json={"documents": []})
    assert got.status_code == 200
    assert got.headers["x-ml-backend"] == "other"
    assert searched.status_code == 200
    assert searched.headers["x-ml-backend"] == "other"
    assert indexed.status_code == 503
    assert indexed.headers["x-ml-backend"] == "fast"


def _slow_upload(url: str, request_id: str) -> socket.socket:
    """A client that declares a 1,000-byte body and sends 10 bytes of it, then goes quiet."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=30)
    sock.sendall(
        b"POST /api/v1/analysis/sentiment HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json"
        b"\r\ncontent-length: 1000\r\nx-request-id: " + request_id.encode() + b"\r\n\r\n"
        b'{"text": "'
    )
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_slow_request_bodies_hold_no_backend_connection(fast: ThreadServer) -> None:
    # more slow clients than pooled connections: streamed, they would hold every one
    settings = make_settings({"fast": fast.url}, "fast", pool_size=2, body_timeout_s=1.0)
    with run_gateway(settings) as running:
        slow = [_slow_upload(running.url, f"slow-{i}") for i in range(4)]
        try:
            # a client timeout only so that a stall fails the test instead of hanging it
            quick = running.client.post(
                "/api/v1/analysis/sentiment", json={"text": "hi"}, timeout=5
            )
            answers = [_answer(sock) for sock in slow]
        finally:
            for sock in slow:
                sock.close()
    assert quick.status_code == 200
    for i, (status, body) in enumerate(answers):
        assert status == 408
        assert body == {
            "error": {
                "code": "request_timeout",
                "message": "request body not received in time",
                "details": [],
            },
            "request_id": f"slow-{i}",
        }


class PlainErrors:
    """An upstream whose server answers errors itself: empty, HTML or plain text."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        status = int(scope["path"].rsplit("/", 1)[-1])
        kinds = {431: (b"", b""), 400: (b"text/html", b"<html>Bad Request</html>")}
        content_type, body = kinds.get(status, (b"text/plain", b"no"))
        headers = [(b"content-type", content_type)] if content_type else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("status", [400, 431, 500])
def test_a_backend_error_outside_the_error_shape_is_put_in_it(status: int) -> None:
    with serving(PlainErrors()) as upstream:
        settings = make_settings({"plain": upstream.url}, "plain")
        with run_gateway(settings) as running:
            response = running.client.get(f"/api/v1/x/{status}", headers={"X-Request-ID": "p-1"})
    assert response.status_code == status
    assert response.json() == {
        "error": {
            "code": {400: "bad_request", 431: "bad_request", 500: "internal_error"}[status],
            "message": f"backend 'plain' refused the request (HTTP {status})",
            "details": [],
        },
        "request_id": "p-1",
    }
    assert response.headers["x-request-id"] == "p-1"


class _SilentBackend:
    """Accepts connections and never answers; notes when the first one arrived."""

    def __init__(self) -> None:
        self.opened_at: float | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        held = []
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                break
            self.opened_at = self.opened_at or time.monotonic()
            held.append(conn)
        for conn in held:
            conn.close()

    def close(self) -> None:
        self._listener.close()


def test_ready_checks_the_fallback_at_the_same_time() -> None:
    """Both backends silent: /ready is 503 after one health timeout, not one per backend.

    Checked one after the other, the fallback was asked only once the selected backend's
    check had timed out (6 s for /ready with a 3 s check timeout)."""
    timeout_s = 2.0
    primary, fallback = _SilentBackend(), _SilentBackend()
    backends = {"primary": primary.url, "fallback": fallback.url}
    settings = make_settings(
        backends, "primary", fallback="fallback", timeouts={"health": timeout_s}
    )
    try:
        with run_gateway(settings) as running:
            started = time.monotonic()
            ready = running.client.get("/ready")
            elapsed = time.monotonic() - started
    finally:
        primary.close()
        fallback.close()
    assert primary.opened_at is not None and fallback.opened_at is not None
    gap = fallback.opened_at - primary.opened_at
    print(
        f"/ready {ready.status_code} in {elapsed * 1000:.0f} ms, fallback asked {gap:.3f} s later"
    )
    assert ready.status_code == 503
    failed = {detail["loc"][1] for detail in ready.json()["error"]["details"]}
    assert failed == {"backend:primary", "backend:fallback"}
    # the fallback was asked while the selected backend was still being waited for
    assert gap < timeout_s / 2
