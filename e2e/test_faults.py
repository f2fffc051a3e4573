"""Faults of the stores under a backend: what the client sees, and what is stored after.

Each backend reaches Postgres and Redis through relays the test switches off or freezes
(a frozen relay keeps connections open and answers nothing, as a SIGSTOPped server
does). Sentiment needs neither store, so it keeps answering 200, and every acknowledged
request is in ml_service_requests after recovery. /ready answers within its timeout
during the fault: 503 when a required store (Postgres, and the vector store in it) is
gone, 200 "degraded" when only Redis is, since Redis is a cache. It returns to "ok" by
itself after recovery. ``test_postgres_sigstopped`` freezes the session's PostgreSQL
itself (SIGSTOP of every process of the server, SIGCONT in a finally): the store
queries a request waits for end at the store's deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from devinfra.processes import RunningService, running_service
from e2e.conftest import BACKEND_MODULES, backend_env
from e2e.test_database_outage import _stored
from tests.persistence.tcp_proxy import TcpProxy, relay_to

FAULT_S = 2.0  # short: each scenario costs about this plus recovery
# A request must not wait on a store that does not answer. This bound catches the old
# waits (10 s per request on a frozen Redis, > 30 s for /ready on a frozen Postgres);
# the figures themselves are printed, not asserted.
CLIENT_TIMEOUT_S = 8.0  # > READY_TIMEOUT_S (3 s)
RETRY_S = 5.0
# The store's client-side deadline in these stacks (STORE_QUERY_TIMEOUT_S): a query to a
# frozen Postgres gives up after it. Short, so the frozen-server test waits little.
STORE_DEADLINE_S = 2.0


@dataclass
class Stack:
    service: RunningService
    postgres: TcpProxy
    redis: TcpProxy
    client: httpx.Client
    pg_url: str
    # checks that fail with no fault at all (the LLM check, with LLM_PROVIDER=extractive)
    baseline: frozenset[str] = frozenset()


def _redis_relay_url(redis_url: str, relay: TcpProxy) -> str:
    db = redis_url.rsplit("/", 1)[1]
    return f"redis://127.0.0.1:{relay.port}/{db}"


@pytest.fixture(scope="module", params=list(BACKEND_MODULES))
def stack(
    request: pytest.FixtureRequest,
    migrated_pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    backend: str = request.param
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    with (
        relay_to(migrated_pg_url) as postgres,
        relay_to(f"postgresql://x@{host_port}/0") as redis,
    ):
        env = {
            **backend_env(
                postgres.dsn_through(migrated_pg_url), _redis_relay_url(redis_url, redis)
            ),
            f"{backend.upper()}_CACHE_RETRY_S": str(RETRY_S),
            "STORE_QUERY_TIMEOUT_S": str(STORE_DEADLINE_S),
        }
        with (
            running_service(BACKEND_MODULES[backend], env, tmp_path_factory.mktemp("faults"))
            as service,
            httpx.Client(base_url=service.base_url, timeout=CLIENT_TIMEOUT_S) as client,
        ):  # fmt: skip
            running = Stack(service, postgres, redis, client, migrated_pg_url)
            running.baseline = frozenset(_failed_checks(_ready(running)[1]))
            yield running


def _sentiment(stack: Stack, phase: str, count: int, acknowledged: list[str]) -> list[int]:
    """``count`` requests with fresh texts (cache misses); the ids of the 200s are kept."""
    statuses = []
    slowest = 0.0
    for _ in range(count):
        request_id = f"fault-{phase}-{uuid.uuid4()}"
        started = time.monotonic()
        response = stack.client.post(
            "/api/v1/analysis/sentiment",
            json={"text": f"still answering {uuid.uuid4()}"},
            headers={"X-Request-ID": request_id},
        )
        slowest = max(slowest, time.monotonic() - started)
        statuses.append(response.status_code)
        if response.status_code == 200:
            acknowledged.append(request_id)
    print(f"{phase}: {count} requests, slowest {slowest * 1000:.0f} ms", flush=True)
    return statuses


SEARCH_TIMEOUT_S = 5.0  # > the vector store's pool acquire timeout (2 s), < its old 10 s


def _search(stack: Stack) -> httpx.Response:
    """A RAG search while the vector store is away. It waited for a pooled connection (the
    pool's 10 s timeout) before its 503; now at most the acquire timeout, and nothing while
    the store's breaker is open. On a frozen store a query waits until the server answers,
    so it is only sent while Postgres is down."""
    started = time.monotonic()
    response = stack.client.post(
        "/api/v1/rag/search", json={"query": "where is the store"}, timeout=SEARCH_TIMEOUT_S
    )
    print(f"search {response.status_code} in {(time.monotonic() - started) * 1000:.0f} ms")
    return response


def _ready(stack: Stack) -> tuple[int, dict[str, Any]]:
    started = time.monotonic()
    response = stack.client.get("/ready")
    print(f"/ready {response.status_code} in {(time.monotonic() - started) * 1000:.0f} ms")
    return response.status_code, response.json()


def _recovered(stack: Stack, timeout_s: float = 30) -> tuple[int, set[str]]:
    """/ready polled until it is as before the fault (recovery needs no restart):
    its last status and the checks failing then beyond the baseline."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = _ready(stack)
        failed = _failed_checks(body) - stack.baseline
        if (status == 200 and not failed) or time.monotonic() > deadline:
            return status, failed
        time.sleep(0.3)


def _failed_checks(body: dict[str, Any]) -> set[str]:
    if "checks" in body:
        return {name for name, check in body["checks"].items() if not check["ok"]}
    return {detail["loc"][1] for detail in body["error"]["details"]}


def test_redis_stopped(stack: Stack) -> None:
    acknowledged: list[str] = []
    stack.redis.down()
    try:
        during = _sentiment(stack, "redis-stopped", 5, acknowledged)
        status, body = _ready(stack)
    finally:
        stack.redis.up()
    after = _recovered(stack)
    assert set(during) == {200}
    assert (status, body["status"], _failed_checks(body) - stack.baseline) == (
        200,
        "degraded",
        {"redis"},
    )
    assert after == (200, set())
    assert set(acknowledged) - _stored(stack.pg_url, acknowledged) == set()


def test_redis_frozen(stack: Stack) -> None:
    acknowledged: list[str] = []
    time.sleep(RETRY_S)  # a breaker opened by an earlier test has closed again
    stack.redis.freeze()
    sent_before = stack.redis.sent
    try:
        during = _sentiment(stack, "redis-frozen", 10, acknowledged)
        commands = stack.redis.sent - sent_before
        status, body = _ready(stack)
    finally:
        stack.redis.thaw()
    after = _recovered(stack)
    assert set(during) == {200}
    # one command waits for its timeout, then Redis is skipped for RETRY_S: the 10
    # requests each sent a GET and a SET before (20)
    assert commands <= 2, commands
    assert (status, body["status"], _failed_checks(body) - stack.baseline) == (
        200,
        "degraded",
        {"redis"},
    )
    assert after == (200, set())
    assert set(acknowledged) - _stored(stack.pg_url, acknowledged) == set()


@pytest.mark.parametrize("fault", ["down", "freeze"])
def test_postgres_away(stack: Stack, fault: str) -> None:
    acknowledged: list[str] = []
    _sentiment(stack, f"postgres-{fault}-before", 3, acknowledged)
    getattr(stack.postgres, fault)()
    try:
        ends = time.monotonic() + FAULT_S
        during: list[int] = []
        while time.monotonic() < ends:
            during += _sentiment(stack, f"postgres-{fault}", 1, acknowledged)
        status, body = _ready(stack)
        searches = [_search(stack) for _ in range(3)] if fault == "down" else []
    finally:
        stack.postgres.up() if fault == "down" else stack.postgres.thaw()
    after = _recovered(stack)
    # /ready's check closed the vector store's breaker: search answers again at once
    searched_after = _search(stack).status_code if fault == "down" else None
    _sentiment(stack, f"postgres-{fault}-after", 3, acknowledged)
    assert set(during) == {200}
    # a frozen vector store holds the engine's checks past the deadline: "engine" fails
    failed = _failed_checks(body)
    assert status == 503 and "postgres" in failed, body
    assert failed & {"vector_store", "engine"}, body
    # the vector store is in the same Postgres: a 503, not a 500, and soon (the client
    # gives up after SEARCH_TIMEOUT_S); while its breaker is open, with Retry-After
    for search in searches:
        assert search.status_code == 503, search.text
        assert set(search.json()) == {"error", "request_id"}
    if searches:
        assert "retry-after" in searches[-1].headers, searches[-1].headers
    assert after == (200, set())
    assert searched_after is None or searched_after < 500, searched_after
    assert set(acknowledged) - _stored(stack.pg_url, acknowledged) == set()


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def _frozen_postgres(pg_url: str) -> Iterator[None]:
    """Every process of the session's PostgreSQL SIGSTOPped (the postmaster and all its
    children: a hung server, not a gone one), resumed when the block ends."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()
        # while connected: the backend process exits with the connection
        postmaster = _ppid(backend[0]) if backend else None
    if postmaster is None:
        pytest.skip("the session's PostgreSQL does not run on this machine")
    pids = [postmaster] + [
        int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == postmaster
    ]
    stopped: list[int] = []
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_postgres_sigstopped(stack: Stack) -> None:
    """A frozen Postgres: vector search gets its 503 (error shape, Retry-After) within the
    store's deadline, then at once while the breaker is open; sentiment answers 200
    meanwhile; /ready answers within its timeout and names the store; after SIGCONT
    everything answers again by itself. Before the deadline, the search waited until
    the server was resumed (the gateway gave up after 60 s)."""
    assert _recovered(stack) == (200, set())
    search = {"query": "is the store frozen", "collection": "frozen-store"}
    task = {"title": f"frozen history {uuid.uuid4()}", "description": "a fresh task, no cache"}
    assert stack.client.post("/api/v1/rag/search", json=search).status_code == 404
    acknowledged: list[str] = []
    with _frozen_postgres(stack.pg_url):
        first, first_s = _timed(lambda: stack.client.post("/api/v1/rag/search", json=search))
        second, second_s = _timed(lambda: stack.client.post("/api/v1/rag/search", json=search))
        estimate, estimate_s = _timed(  # reads the calibration history
            lambda: stack.client.post("/api/v1/complexity/pre-estimate", json=task)
        )
        during = _sentiment(stack, "postgres-sigstopped", 5, acknowledged)
        (ready, ready_s) = _timed(lambda: stack.client.get("/ready"))
    print(
        f"frozen: search {first.status_code} in {first_s * 1000:.0f} ms, then "
        f"{second.status_code} in {second_s * 1000:.0f} ms; complexity {estimate.status_code}"
        f" in {estimate_s * 1000:.0f} ms; /ready {ready.status_code}"
        f" in {ready_s * 1000:.0f} ms (deadline {STORE_DEADLINE_S:g} s)"
    )
    after = _recovered(stack)
    # wide bounds: they catch a search that waits for the server (until SIGCONT, or the
    # client's CLIENT_TIMEOUT_S), not a slow machine
    for response in (first, second):
        assert response.status_code == 503, response.text
        assert set(response.json()) == {"error", "request_id"}
        assert "retry-after" in response.headers, response.headers
    assert first_s < STORE_DEADLINE_S + 4.0, first_s
    assert estimate.status_code == 503, estimate.text
    assert "retry-after" in estimate.headers, estimate.headers
    assert estimate_s < STORE_DEADLINE_S + 4.0, estimate_s
    assert second_s < STORE_DEADLINE_S, second_s  # the breaker: no second wait
    assert set(during) == {200}
    assert ready_s < 3.0 + 3.0, ready_s  # READY_TIMEOUT_S + slack
    failed = _failed_checks(ready.json())
    assert ready.status_code == 503 and failed & {"vector_store", "engine"}, ready.text
    assert after == (200, set())
    # the breaker's trial (or /ready's check) closed it: the store answers again
    assert stack.client.post("/api/v1/rag/search", json=search).status_code == 404
    assert set(acknowledged) - _stored(stack.pg_url, acknowledged) == set()
