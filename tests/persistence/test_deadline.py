"""The client-side deadline on a psycopg connection, against a real PostgreSQL reached
through a relay that freezes (keeps the connection open and forwards nothing, as a
SIGSTOPped server does; e2e/test_faults.py freezes the server itself)."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from backends.core.persistence.deadline import QueryTimeout, Watchdog
from backends.core.vectorstore.pgvector_store import PgVectorStore
from tests.persistence.tcp_proxy import TcpProxy, relay_to

THAW_S = 8.0  # a test without a working deadline waits this long, then fails


def _freeze(relay: TcpProxy) -> None:
    """Freeze ``relay``; it thaws by itself after THAW_S, so a missing deadline fails
    the test instead of hanging it."""
    relay.freeze()
    timer = threading.Timer(THAW_S, relay.thaw)
    timer.daemon = True
    timer.start()


def test_a_query_to_a_frozen_server_ends_at_its_deadline(pg_url: str) -> None:
    watchdog = Watchdog()
    with relay_to(pg_url) as relay, psycopg.connect(relay.dsn_through(pg_url)) as conn:
        conn.execute("SELECT 1")
        _freeze(relay)
        started = time.monotonic()
        with pytest.raises(QueryTimeout), watchdog.deadline(conn, 0.5):
            conn.execute("SELECT 1")  # answered after THAW_S without the deadline
        waited = time.monotonic() - started
        relay.thaw()
    print(f"frozen relay: QueryTimeout after {waited * 1000:.0f} ms (deadline 500 ms)")
    assert waited < 5.0  # without the deadline: until the relay thaws, never here
    assert conn.closed  # a pool discards it: never handed to the next request


def test_work_that_ends_in_time_keeps_its_connection(pg_url: str) -> None:
    watchdog = Watchdog()
    with psycopg.connect(pg_url) as conn:
        for _ in range(200):
            with watchdog.deadline(conn, 0.05):
                conn.execute("SELECT 1")
        time.sleep(0.2)  # past every deadline: a disarmed timer must not fire
        assert conn.execute("SELECT 2").fetchone() == (2,)
        assert not conn.closed


def test_the_earliest_deadline_fires_first(pg_url: str) -> None:
    """A short deadline armed after a long one still fires on time (the thread wakes)."""
    watchdog = Watchdog()
    with (
        relay_to(pg_url) as relay,
        psycopg.connect(pg_url) as idle,
        psycopg.connect(relay.dsn_through(pg_url)) as conn,
        watchdog.deadline(idle, 30),
    ):
        _freeze(relay)
        started = time.monotonic()
        with pytest.raises(QueryTimeout), watchdog.deadline(conn, 0.3):
            conn.execute("SELECT 1")
        assert time.monotonic() - started < 5.0
        relay.thaw()
        assert idle.execute("SELECT 1").fetchone() == (1,)  # the long one untouched


def test_a_pool_replaces_a_connection_closed_at_its_deadline(pg_url: str) -> None:
    watchdog = Watchdog()
    with (
        relay_to(pg_url) as relay,
        ConnectionPool(relay.dsn_through(pg_url), min_size=1, max_size=1, open=True) as pool,
    ):
        pool.wait()
        _freeze(relay)
        with pytest.raises(QueryTimeout), pool.connection() as conn, watchdog.deadline(conn, 0.3):
            conn.execute("SELECT 1")
        relay.thaw()
        with pool.connection(timeout=5) as conn:
            assert conn.execute("SELECT 3").fetchone() == (3,)


def test_the_vector_store_answers_503_and_opens_its_breaker(pg_url: str) -> None:
    with relay_to(pg_url) as relay:
        store = PgVectorStore(relay.dsn_through(pg_url), max_size=2, query_timeout_s=0.5)
        try:
            store.ensure_schema()
            _freeze(relay)
            started = time.monotonic()
            errors: list[Any] = []
            for _ in range(3):
                try:
                    store.list_collections()
                except Exception as exc:
                    errors.append(exc)
            waited = time.monotonic() - started
            relay.thaw()
            assert [e.status_code for e in errors] == [503, 503, 503]
            assert all(e.retry_after_s for e in errors)
            assert waited < 5.0  # one deadline, then the breaker's prompt 503s
            store.ping()  # the check closes the breaker once the server answers
            store.list_collections()
        finally:
            store.close()
