"""Faults of the stores under a backend: what the client sees, and what is stored after.

Each backend reaches Postgres and Redis through relays the test switches off or freezes
(a frozen relay keeps connections open and answers nothing, as a SIGSTOPped server
does). Sentiment needs neither store, so it keeps answering 200, and every acknowledged
request is in ml_service_requests after recovery. /ready answers within its timeout
during the fault: 503 when a required store (Postgres, and the vector store in it) is
gone, 200 "degraded" when only Redis is, since Redis is a cache. It returns to "ok" by
itself after recovery.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
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
