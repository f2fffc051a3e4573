"""The Django response cache treats a frozen Postgres as a miss, and then leaves it alone.

The cache record is read through ``PgReader`` (threads of its own); before, the request
thread read it on Django's connection and waited as long as the frozen server did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from backends.core.persistence import sql
from backends.django_service.mlapi.pg_reader import PgReader
from backends.django_service.mlapi.response_cache import ResponseCache
from tests.persistence.tcp_proxy import TcpProxy, relay_to


@pytest.fixture
def proxy(migrated_pg_url: str) -> Iterator[TcpProxy]:
    with relay_to(migrated_pg_url) as relay:
        yield relay


def _get(cache: ResponseCache, key: str, bound_s: float = 10) -> bytes | None:
    """``cache.get`` on a thread; the bound only turns a hang into a failure."""
    result: list[bytes | None] = []
    thread = threading.Thread(target=lambda: result.append(cache.get(key)), daemon=True)
    thread.start()
    thread.join(bound_s)
    assert result, f"cache.get still waiting after {bound_s} s"
    return result[0]


def test_a_frozen_database_is_a_miss_then_skipped(migrated_pg_url: str, proxy: TcpProxy) -> None:
    reader = PgReader(proxy.dsn_through(migrated_pg_url), connect_timeout_s=5)
    cache = ResponseCache(None, reader, None, "test", 60, retry_s=60)
    try:
        assert _get(cache, "mlcache:none") is None  # the database answers: a plain miss
        proxy.freeze()
        assert _get(cache, "mlcache:none") is None  # given up after the read timeout
        sent = proxy.sent
        assert _get(cache, "mlcache:none") is None
        assert proxy.sent == sent  # the breaker is open: no query was sent
    finally:
        proxy.thaw()
        reader.close()


def test_reads_of_a_locked_row_leave_the_reader_to_the_others(migrated_pg_url: str) -> None:
    """A live server where one row's reads hang (another transaction holds its lock): after
    one such read per reader thread, a cached row is still served.

    Before, each hung read kept its thread until the lock was released, so the next read
    waited in the queue past its 0.5 s and a hit became a miss.
    """
    reader = PgReader(migrated_pg_url, connect_timeout_s=5, threads=2)
    cache = ResponseCache(None, reader, None, "test", 60, retry_s=0.0)
    with psycopg.connect(migrated_pg_url, autocommit=True) as setup:
        for key in ("mlcache:django-locked", "mlcache:django-served"):
            setup.execute(
                sql.as_pyformat(sql.UPSERT_CACHE),
                (key, "hash", "/api/v1/test", "test", Jsonb({"label": "positive"}), 60.0, 20),
            )
    try:
        with psycopg.connect(migrated_pg_url) as locker:  # a transaction until the block ends
            locker.execute(
                "SELECT 1 FROM ml_service_cache WHERE cache_key = 'mlcache:django-locked' "
                "FOR UPDATE"
            )
            for _ in range(2):
                assert _get(cache, "mlcache:django-locked") is None
            assert _get(cache, "mlcache:django-served") == b'{"label":"positive"}'
    finally:
        reader.close()


def _store(url: str, *keys: str) -> None:
    with psycopg.connect(url, autocommit=True) as setup:
        for key in keys:
            setup.execute("DELETE FROM ml_service_cache WHERE cache_key = %s", (key,))
            setup.execute(
                sql.as_pyformat(sql.UPSERT_CACHE),
                (key, "hash", "/api/v1/test", "test", Jsonb({"key": key}), 60.0, 20),
            )


def _hits(url: str, *keys: str) -> dict[str, tuple[int, object]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT cache_key, hit_count, last_hit_at FROM ml_service_cache "
            "WHERE cache_key = ANY(%s)",
            (list(keys),),
        ).fetchall()
    return {key: (hits, at) for key, hits, at in rows}


def _fetch_while_busy(reader: PgReader, keys: list[str]) -> list[Any]:
    """Cache reads of ``keys``, all asked while the reader's one thread is busy (so they
    queue together behind it)."""
    reader.fetch_value("SELECT 1", (), 5)  # connected
    busy = threading.Thread(
        target=reader.fetch_value, args=("SELECT pg_sleep(0.5)", (), 5), daemon=True
    )
    busy.start()
    time.sleep(0.1)  # the one reader thread is in pg_sleep
    with ThreadPoolExecutor(len(keys)) as pool:
        answers = list(pool.map(lambda k: reader.fetch_cache(k, 5), keys))
    busy.join(5)
    return answers


def test_cache_reads_waiting_together_are_one_statement(migrated_pg_url: str) -> None:
    """Reads queued while the reader is busy are answered by one UPDATE: each its own
    answer (a key asked twice in the batch gets it twice and counts two hits), one now()
    for all their rows.

    Before, each was its own round trip (rows hit at different times)."""
    one, two, absent = "mlcache:django-batch-1", "mlcache:django-batch-2", "mlcache:nothing"
    _store(migrated_pg_url, one, two)
    reader = PgReader(migrated_pg_url, connect_timeout_s=5, threads=1)
    try:
        answers = _fetch_while_busy(reader, [one, two, one, absent])
    finally:
        reader.close()
    assert answers == [{"key": one}, {"key": two}, {"key": one}, None]
    hits = _hits(migrated_pg_url, one, two)
    assert (hits[one][0], hits[two][0]) == (2, 1)
    assert hits[one][1] == hits[two][1], "not one statement"


def test_reads_of_one_key_waiting_together_count_a_hit_each(migrated_pg_url: str) -> None:
    """Two requests that missed Redis on the same key and wait together: both get the
    row, and it counts two hits (as FastAPI's coalesced read does); a lone read, one."""
    key = "mlcache:django-same-key"
    _store(migrated_pg_url, key)
    reader = PgReader(migrated_pg_url, connect_timeout_s=5, threads=1)
    try:
        answers = _fetch_while_busy(reader, [key, key])
        assert answers == [{"key": key}, {"key": key}]
        assert _hits(migrated_pg_url, key)[key][0] == 2
        assert reader.fetch_cache(key, 5) == {"key": key}
        assert _hits(migrated_pg_url, key)[key][0] == 3
    finally:
        reader.close()
