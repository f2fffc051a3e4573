"""bench/lua/profile.lua driven by the real wrk against a tiny recording HTTP server."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import wrk
from bench.scenarios import RequestSpec, Scenario

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")

Seen = list[tuple[str, str, str, str | None, str | None]]


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    seen: Seen = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.seen.append(
            (
                self.command,
                self.path,
                body,
                self.headers.get("X-API-Key"),
                self.headers.get("Content-Type"),
            )
        )
        status = 200 if self.path != "/missing" else 404
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, Seen]]:
    seen: Seen = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_mixed_profile_varies_bodies_keeps_headers_and_reports(
    recorder: tuple[str, Seen],
) -> None:
    url, seen = recorder
    scenario = Scenario(
        "t",
        "t",
        (
            RequestSpec("POST", "/vary", '{"text":"doc {n}"}', weight=3),
            RequestSpec("POST", "/fixed", '{"text":"same"}', weight=1),
            RequestSpec("GET", "/missing", weight=1),
        ),
        "test",
    )
    options = wrk.WrkOptions(connections=4, duration_s=1, threads=2, headers=("X-API-Key: k1",))
    result = wrk.run(url, options, scenario.wrk_args("tagZ"))

    assert result.requests >= 50
    paths = Counter(path for _, path, *_ in seen)
    assert paths["/vary"] > paths["/fixed"] > 0  # weights 3:1 respected roughly
    varied = [body for _, path, body, *_ in seen if path == "/vary"]
    assert len(set(varied)) == len(varied)  # a unique token per request: caches miss
    assert all(body.startswith('{"text":"doc tagZ-') for body in varied)
    assert {body for _, path, body, *_ in seen if path == "/fixed"} == {'{"text":"same"}'}
    assert {key for *_, key, _ in seen} == {"k1"}  # -H survives custom per-request headers
    assert {ctype for method, _, _, _, ctype in seen if method == "POST"} == {"application/json"}
    assert result.non_2xx == pytest.approx(paths["/missing"], abs=8)  # in flight at stop
    assert result.p95_ms is not None
    assert result.p50_ms <= result.p95_ms <= result.p99_ms <= result.max_ms


def test_statuses_are_counted_per_code_only_when_asked(recorder: tuple[str, Seen]) -> None:
    url, _ = recorder
    scenario = Scenario(
        "t", "t", (RequestSpec("GET", "/ok", weight=1), RequestSpec("GET", "/missing")), "test"
    )
    options = wrk.WrkOptions(connections=4, duration_s=1, threads=2)
    counted = wrk.run(url, options, scenario.wrk_args("s"), count_statuses=True)
    plain = wrk.run(url, options, scenario.wrk_args("p"))

    assert set(counted.statuses) == {200, 404}
    assert counted.statuses[404] == counted.non_2xx
    assert sum(counted.statuses.values()) == counted.requests
    assert plain.statuses == {}
