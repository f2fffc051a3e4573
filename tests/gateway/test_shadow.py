"""Shadow mode in the gateway: mirrors after the answer, never writes, never hurts the primary."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import psutil
import pytest
from starlette.types import Receive, Scope, Send

from tests.gateway.conftest import RunningGateway, make_settings, run_gateway
from tests.gateway.upstreams import EchoUpstream, ThreadServer, serve_lifespan, serving

ADJUST = "/api/v1/complexity/calculate-adjustment"
BODY = {"pre_level": 3, "actual_level": 4}


def _counter(gateway: RunningGateway, operation: str, outcome: str) -> float:
    wanted = f'operation="{operation}",outcome="{outcome}"}}'
    for line in gateway.client.get("/metrics").text.splitlines():
        if line.startswith("gateway_shadow_requests_total{") and wanted in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_for(gateway: RunningGateway, operation: str, outcome: str, count: float) -> None:
    deadline = time.monotonic() + 20
    while _counter(gateway, operation, outcome) < count:
        assert time.monotonic() < deadline, f"no {outcome} mirror of {operation}"
        time.sleep(0.02)


class Stalled:
    """An upstream that holds every request until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        self.requests += 1
        await asyncio.to_thread(self.release.wait)  # set from the test thread
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


class Constant:
    """An upstream that answers every request with the same JSON bytes."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests = 0
        self.peers: set[int] = set()  # client ports

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        self.requests += 1
        self.peers.add(scope["client"][1])
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def _comparison_workers() -> list[psutil.Process]:
    """Comparison worker processes started by this (the gateway's) process."""
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if "gateway.shadow_worker" in " ".join(child.cmdline())
    ]


@pytest.fixture
def candidate() -> Iterator[tuple[EchoUpstream, ThreadServer]]:
    upstream = EchoUpstream("candidate")
    with serving(upstream) as server:
        yield upstream, server


def test_a_mirror_is_marked_and_compared(
    fast: ThreadServer, candidate: tuple[EchoUpstream, ThreadServer]
) -> None:
    upstream, server = candidate
    settings = make_settings(
        {"fast": fast.url, "candidate": server.url}, "fast",
        shadow="candidate", gateway_secret="s3cret",
    )  # fmt: skip
    with run_gateway(settings) as gateway:
        answer = gateway.client.post(ADJUST, json=BODY)
        assert answer.status_code == 200
        assert answer.json()["backend"] == "fast"  # the client gets the primary's answer
        # the echo answers differ in "backend" (and the headers each saw): a difference
        _wait_for(gateway, "complexity_calculate_adjustment", "differs", 1)
    assert upstream.state.last_headers["x-shadow"] == "1"
    assert upstream.state.last_headers["x-gateway-secret"] == "s3cret"


def test_writes_and_client_shadow_headers_are_not_mirrored(
    fast: ThreadServer, candidate: tuple[EchoUpstream, ThreadServer]
) -> None:
    upstream, server = candidate
    settings = make_settings({"fast": fast.url, "candidate": server.url}, "fast",
                             shadow="candidate")  # fmt: skip
    with run_gateway(settings) as gateway:
        for path in ("/api/v1/rag/index", "/api/v1/rag/index-document"):
            assert gateway.client.post(path, json={}).status_code == 200
        assert gateway.client.delete("/api/v1/rag/collection/c").status_code == 200
        # a client cannot mark its own request shadow (it would not be charged)
        answer = gateway.client.get("/live", headers={"X-Shadow": "1"})
        assert "x-shadow" not in answer.json()["headers"]
        _wait_for(gateway, "health_live", "differs", 1)
    assert upstream.state.requests == 1  # only /live reached the candidate


def test_a_dead_candidate_costs_the_primary_nothing(fast: ThreadServer, dead_url: str) -> None:
    settings = make_settings({"fast": fast.url, "dead": dead_url}, "fast", shadow="dead")
    with run_gateway(settings) as gateway:
        for _ in range(3):
            assert gateway.client.post(ADJUST, json=BODY).status_code == 200
        _wait_for(gateway, "complexity_calculate_adjustment", "error", 3)


def test_mirrors_beyond_the_bound_are_dropped_while_the_primary_answers(
    fast: ThreadServer,
) -> None:
    stalled = Stalled()
    with serving(stalled) as server:
        settings = make_settings(
            {"fast": fast.url, "stalled": server.url}, "fast",
            shadow="stalled", shadow_max_inflight=1,
        )  # fmt: skip
        try:
            with run_gateway(settings) as gateway:
                for _ in range(3):  # answered while the first mirror is still held
                    assert gateway.client.post(ADJUST, json=BODY).status_code == 200
                op = "complexity_calculate_adjustment"
                _wait_for(gateway, op, "dropped_inflight", 2)  # said by the worker
                assert _counter(gateway, op, "dropped_inflight") == 2
                assert _counter(gateway, op, "dropped_queue") == 0
                stalled.release.set()
                _wait_for(gateway, "complexity_calculate_adjustment", "differs", 1)
        finally:
            stalled.release.set()
    assert stalled.requests == 1


def test_mirrors_are_sent_and_compared_by_the_worker_process() -> None:
    """The gateway only hands the request and the primary's answer over: the exchange with
    the candidate and the comparison (their CPU would be taken from the primary's cores)
    are the worker process's. Identical answers match."""
    body = b'{"multiplier": 1.15, "bonus_percent": 15}'
    primary, candidate = Constant(body), Constant(body)
    with serving(primary) as first, serving(candidate) as second:
        settings = make_settings(
            {"first": first.url, "second": second.url}, "first", shadow="second"
        )
        with run_gateway(settings) as gateway:
            for _ in range(3):
                assert gateway.client.post(ADJUST, json=BODY).content == body
            _wait_for(gateway, "complexity_calculate_adjustment", "match", 3)
            workers = _comparison_workers()
            assert len(workers) == 1
            # the candidate's peers are the worker's (kept-alive) connections
            ports = {conn.laddr.port for conn in workers[0].net_connections("tcp")}
            assert candidate.peers and candidate.peers <= ports
    assert candidate.requests == 3


def test_the_worker_runs_before_the_first_request_and_nothing_is_dropped_at_start(
    fast: ThreadServer, candidate: tuple[EchoUpstream, ThreadServer]
) -> None:
    """The lifespan starts the worker process: the first requests' mirrors find it taking
    jobs. (Started by the first mirror, as before, it took ~1 s to start: the mirrors sampled
    meanwhile arrived at once, beyond GATEWAY_SHADOW_MAX_INFLIGHT, and were dropped.)"""
    upstream, server = candidate
    settings = make_settings(
        {"fast": fast.url, "candidate": server.url}, "fast", shadow="candidate",
        shadow_max_inflight=8,
    )  # fmt: skip
    op = "complexity_calculate_adjustment"
    with run_gateway(settings) as gateway:
        assert len(_comparison_workers()) == 1  # before any request
        for _ in range(30):  # a few per hand-off, far fewer than the bound
            assert gateway.client.post(ADJUST, json=BODY).status_code == 200
            time.sleep(0.01)
        _wait_for(gateway, op, "differs", 30)
        assert _counter(gateway, op, "dropped_inflight") == 0
        assert _counter(gateway, op, "dropped_queue") == 0
    assert upstream.state.requests == 30


def test_a_full_comparison_queue_is_its_own_drop_reason(
    fast: ThreadServer, candidate: tuple[EchoUpstream, ThreadServer], migrated_pg_url: str
) -> None:
    """A worker that does not read (stopped here) gets no more: the pipe takes the first
    mirror (larger than the pipe), one waits in the queue (of one), the next ones find it
    full. /metrics and the report say so apart from the in-flight bound; the worker goes
    on once it reads again."""
    _, server = candidate
    settings = make_settings(
        {"fast": fast.url, "candidate": server.url}, "fast", shadow="candidate",
        shadow_compare_queue=1, database_url=migrated_pg_url,
    )  # fmt: skip
    op = "complexity_calculate_adjustment"
    large = {**BODY, "pad": "x" * 256 * 1024}  # more than a pipe holds
    sent = 6
    with run_gateway(settings) as gateway:
        (worker,) = _comparison_workers()
        worker.suspend()
        try:
            for _ in range(sent):  # echo answers differ: each one handed over is compared
                assert gateway.client.post(ADJUST, json=large).status_code == 200
                time.sleep(0.05)  # the hand-off (every 20 ms) writes what waits, if it can
            dropped = _counter(gateway, op, "dropped_queue")
            assert dropped >= 1
        finally:
            worker.resume()
        _wait_for(gateway, op, "differs", sent - dropped)
        assert _counter(gateway, op, "dropped_inflight") == 0
        assert _counter(gateway, op, "dropped_queue") == dropped
        report = gateway.client.get("/gateway/shadow/report").json()
    by_gateway = report["candidates"]["candidate"]["dropped_by_this_gateway"]
    assert by_gateway == {op: {"dropped_inflight": 0, "dropped_queue": dropped}}


def test_the_primary_is_asked_again_only_while_idle_and_a_few_times(
    candidate: tuple[EchoUpstream, ThreadServer],
) -> None:
    """Noise requests (a non-deterministic operation sent to the primary twice) are work for
    the primary: at most GATEWAY_SHADOW_NOISE_SAMPLES, none while a client request is in
    flight."""
    _, server = candidate
    primary = EchoUpstream("primary")
    generate = "/api/v1/analysis/generate"
    op = "analysis_generate"
    with serving(primary) as first:
        settings = make_settings(
            {"first": first.url, "candidate": server.url}, "first", shadow="candidate",
            shadow_noise_rate=1.0, shadow_noise_samples=1,
        )  # fmt: skip
        with run_gateway(settings) as gateway:
            slow = threading.Thread(  # holds a client request in flight for 3 s
                target=gateway.client.post, args=(ADJUST + "?sleep=3",), kwargs={"json": BODY}
            )
            slow.start()
            time.sleep(0.5)
            assert gateway.client.post(generate, json={"prompt": "a"}).status_code == 200
            _wait_for(gateway, op, "differs", 1)
            assert primary.state.requests == 2  # the slow one, the generation: not busy again
            slow.join()
            for count in (2, 3):  # idle now: asked again once, then never (one sample)
                assert gateway.client.post(generate, json={"prompt": "a"}).status_code == 200
                _wait_for(gateway, op, "differs", count)
    assert primary.state.requests == 2 + 2 + 1
