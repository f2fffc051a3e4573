"""Both background log writers against the real shared tables: nothing accepted is lost.

A row Postgres refuses costs only that row, a credits total beyond int4 is stored, and an
outage (the database behind a relay a test switches off) is buffered up to the bound.
Each writer is driven by explicit flushes (never started), so no test waits on a timer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import asyncpg
import psycopg
import pytest

from backends.core.persistence.records import CacheRow, RequestRecord
from backends.core.persistence.write_policy import WriterCounts
from backends.django_service.mlapi.request_log import BackgroundWriter
from backends.fastapi_service.database import create_pool
from backends.fastapi_service.request_log import RequestLogWriter
from tests.persistence.tcp_proxy import TcpProxy, relay_to

INT4_MAX = 2**31 - 1
# what each driver raises while the database is away (reset, then refused connections)
AWAY = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, psycopg.OperationalError)


class Writer(Protocol):
    def submit(self, record: RequestRecord) -> None: ...
    def put_cache(self, row: CacheRow) -> None: ...
    def flush(self) -> None: ...
    def counts(self) -> WriterCounts: ...
    def close(self) -> None: ...


class FastAPIWriter:
    """RequestLogWriter (asyncpg pool) driven from a test through its own event loop."""

    def __init__(self, dsn: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._pool = self._loop.run_until_complete(create_pool(dsn, 2))
        self._writer = RequestLogWriter(self._pool, interval_s=60, batch_size=100, **options)

    def submit(self, record: RequestRecord) -> None:
        self._writer.submit(record)

    def put_cache(self, row: CacheRow) -> None:
        self._writer.put_cache(row)

    def flush(self) -> None:
        self._loop.run_until_complete(self._writer.flush())

    def counts(self) -> WriterCounts:
        return self._writer.counts()

    def close(self) -> None:
        self._loop.run_until_complete(self._pool.close())
        self._loop.close()


class DjangoWriter:
    """BackgroundWriter (psycopg, thread) with its flush called from the test thread."""

    def __init__(self, dsn: str, **options: Any) -> None:
        self._writer = BackgroundWriter(
            dsn, interval_s=60, batch_size=100, connect_timeout_s=2, **options
        )

    def submit(self, record: RequestRecord) -> None:
        self._writer.submit(lambda: record)

    def put_cache(self, row: CacheRow) -> None:
        self._writer.put_cache(row)

    def flush(self) -> None:
        self._writer.flush()

    def counts(self) -> WriterCounts:
        return self._writer.counts()

    def close(self) -> None:
        self._writer.stop()


WRITERS: dict[str, Callable[..., Writer]] = {"fastapi": FastAPIWriter, "django": DjangoWriter}


@pytest.fixture
def proxy(migrated_pg_url: str) -> Iterator[TcpProxy]:
    with relay_to(migrated_pg_url) as relay:
        yield relay


def _open(kind: str, dsn: str, **options: Any) -> Writer:
    return WRITERS[kind](dsn, **options)


def _record(user: str, index: int, **values: Any) -> RequestRecord:
    return RequestRecord.build(
        service_name="test", endpoint="/api/v1/rag/search", method="POST", status_code=200,
        duration_ms=2.0, request_id=f"{user}-{index}", user_id=user, **values,
    )  # fmt: skip


def _stored(pg: psycopg.Connection[Any], user: str) -> list[str]:
    rows = pg.execute(
        "SELECT request_id FROM ml_service_requests WHERE user_id = %s ORDER BY request_id",
        (user,),
    ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture(scope="module")
def pg(migrated_pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(migrated_pg_url, autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize("kind", WRITERS)
def test_a_row_postgres_refuses_costs_only_that_row(
    kind: str, migrated_pg_url: str, pg: psycopg.Connection[Any]
) -> None:
    user = f"refused-{uuid.uuid4().hex[:8]}"
    records = [_record(user, i) for i in range(7)]
    # a payload the sanitiser would have cleaned: a row jsonb refuses (NaN is not JSON)
    poisoned = dataclasses.replace(records[3], request_payload={"top_k": float("nan")})
    writer = _open(kind, migrated_pg_url)
    try:
        for record in [*records[:3], poisoned, *records[4:]]:
            writer.submit(record)
        writer.flush()
        counts = writer.counts()
    finally:
        writer.close()
    assert _stored(pg, user) == sorted(r.request_id for i, r in enumerate(records) if i != 3)
    assert (counts.written, counts.refused, counts.pending) == (6, 1, 0)
    usage = pg.execute(
        "SELECT sum(total_requests) FROM ml_service_usage WHERE user_id = %s", (user,)
    ).fetchone()
    assert usage == (6,)  # the refused row's usage went with it, no more, no less


@pytest.mark.parametrize("kind", WRITERS)
def test_cache_rows_are_stored_as_served_and_a_refused_one_costs_only_itself(
    kind: str, migrated_pg_url: str, pg: psycopg.Connection[Any]
) -> None:
    """The body goes to Postgres as the JSON text served (parsed there once), in one batch;
    a body jsonb refuses is dropped alone and the rest of the batch is stored."""
    prefix = f"mlcache:writer-{uuid.uuid4().hex[:8]}"
    bodies = {
        f"{prefix}:0": b'{"embedding":[0.25,-1.5e-07],"model":"mini"}',
        f"{prefix}:1": b'{"label":"n\\u00e9gatif","score":0.5}',
        f"{prefix}:2": b'{"truncated":',  # not JSON: refused by Postgres
        f"{prefix}:3": '{"text":"ok ✓"}'.encode(),
    }
    writer = _open(kind, migrated_pg_url)
    try:
        for key, body in bodies.items():
            writer.put_cache(CacheRow(key, "h" * 64, "/api/v1/test", kind, body, 60))
        writer.flush()
    finally:
        writer.close()
    rows = pg.execute(
        "SELECT cache_key, response_data, size_bytes FROM ml_service_cache"
        " WHERE cache_key LIKE %s ORDER BY cache_key",
        (prefix + ":%",),
    ).fetchall()
    expected = [
        (key, json.loads(body), len(body)) for key, body in bodies.items() if not key.endswith(":2")
    ]
    assert rows == expected


@pytest.mark.parametrize("kind", WRITERS)
def test_credits_beyond_int4_are_stored(
    kind: str, migrated_pg_url: str, pg: psycopg.Connection[Any]
) -> None:
    user = f"credits-{uuid.uuid4().hex[:8]}"
    writer = _open(kind, migrated_pg_url)
    try:
        for i in range(2):  # one batch whose sum already exceeds int4
            writer.submit(_record(user, i, credits_charged=INT4_MAX))
        writer.flush()
        writer.submit(_record(user, 2, credits_charged=1))  # a later batch of the same user
        writer.flush()
        counts = writer.counts()
    finally:
        writer.close()
    assert _stored(pg, user) == [f"{user}-0", f"{user}-1", f"{user}-2"]
    assert counts.dropped == 0
    total = pg.execute(
        "SELECT total_credits FROM ml_service_usage WHERE user_id = %s", (user,)
    ).fetchone()
    assert total == (2 * INT4_MAX + 1,)


@pytest.mark.parametrize("kind", WRITERS)
def test_shadow_rows_are_marked_and_write_no_usage(
    kind: str, migrated_pg_url: str, pg: psycopg.Connection[Any]
) -> None:
    user = f"shadow-{uuid.uuid4().hex[:8]}"
    writer = _open(kind, migrated_pg_url)
    try:
        writer.submit(_record(user, 0, credits_charged=5))
        writer.submit(_record(user, 1, shadow=True))
        writer.flush()
    finally:
        writer.close()
    rows = pg.execute(
        "SELECT request_id, shadow, credits_charged FROM ml_service_requests"
        " WHERE user_id = %s ORDER BY request_id",
        (user,),
    ).fetchall()
    assert rows == [(f"{user}-0", False, 5), (f"{user}-1", True, 0)]
    usage = pg.execute(
        "SELECT total_requests, total_credits FROM ml_service_usage WHERE user_id = %s", (user,)
    ).fetchall()
    assert usage == [(1, 5)]  # the shadow copy is logged, never counted


@pytest.mark.parametrize("kind", WRITERS)
def test_rows_accepted_during_an_outage_are_written_after_it(
    kind: str, migrated_pg_url: str, proxy: TcpProxy, pg: psycopg.Connection[Any]
) -> None:
    user = f"outage-{uuid.uuid4().hex[:8]}"
    writer = _open(kind, proxy.dsn_through(migrated_pg_url))
    try:
        writer.submit(_record(user, 0))
        writer.flush()
        proxy.down()
        for i in range(1, 6):
            writer.submit(_record(user, i))
            with pytest.raises(AWAY):
                writer.flush()
        assert writer.counts().pending == 5
        proxy.up()
        writer.flush()
        counts = writer.counts()
    finally:
        writer.close()
    assert _stored(pg, user) == [f"{user}-{i}" for i in range(6)]
    assert (counts.written, counts.dropped, counts.pending) == (6, 0, 0)


@pytest.mark.parametrize("kind", WRITERS)
def test_a_full_buffer_drops_new_rows_and_counts_them(
    kind: str, migrated_pg_url: str, pg: psycopg.Connection[Any]
) -> None:
    user = f"overflow-{uuid.uuid4().hex[:8]}"
    writer = _open(kind, migrated_pg_url, buffer_rows=3)
    try:
        for i in range(5):  # no flush in between: as if the database were away
            writer.submit(_record(user, i))
        writer.flush()
        counts = writer.counts()
    finally:
        writer.close()
    assert _stored(pg, user) == [f"{user}-{i}" for i in range(3)]
    assert (counts.written, counts.overflowed, counts.pending) == (3, 2, 0)


@pytest.mark.parametrize("kind", WRITERS)
def test_every_column_of_a_request_row_is_stored_as_built(
    kind: str, migrated_pg_url: str, pg: psycopg.Connection[Any]
) -> None:
    """The FastAPI writer sends a batch by COPY (binary jsonb and inet), Django's by
    executemany: both store the same values, column by column."""
    user = f"columns-{uuid.uuid4().hex[:8]}"
    records = [
        _record(
            user, 0, request_payload={"text": "naïve ✓ \u2028", "top_k": 3, "n": None},
            response_payload={"results": [{"score": 0.125, "ids": [1, 2]}], "ok": True},
            ip_address="203.0.113.7", user_agent="agent/1.0", organization_id="org-1",
            api_key_id="key-1", credits_charged=3, error_message="détail",
        ),
        dataclasses.replace(
            _record(user, 1, ip_address="2001:db8::5", shadow=True), status_code=503
        ),
        _record(user, 2),  # every optional column NULL
    ]  # fmt: skip
    writer = _open(kind, migrated_pg_url)
    try:
        for record in records:
            writer.submit(record)
        writer.flush()
    finally:
        writer.close()
    rows = pg.execute(
        "SELECT id, user_id, organization_id, service_name, endpoint, method, request_payload,"
        " response_payload, status_code, error_message, duration_ms, credits_charged,"
        " host(ip_address), masklen(ip_address), user_agent, request_id, created_at,"
        " api_key_id, shadow"
        " FROM ml_service_requests WHERE user_id = %s ORDER BY request_id",
        (user,),
    ).fetchall()
    expected = [
        (
            r.id, r.user_id, r.organization_id, r.service_name, r.endpoint, r.method,
            r.request_payload, r.response_payload, r.status_code, r.error_message,
            r.duration_ms, r.credits_charged, r.ip_address, _host_bits(r.ip_address), r.user_agent,
            r.request_id,
            r.created_at, r.api_key_id, r.shadow,
        )
        for r in records
    ]  # fmt: skip
    assert rows == expected


def _host_bits(address: str | None) -> int | None:
    """A host address is stored with a full-length mask (asyncpg's codec stores it so)."""
    return None if address is None else ipaddress.ip_address(address).max_prefixlen


def test_the_fastapi_pool_reads_jsonb_and_inet_as_asyncpg_does(migrated_pg_url: str) -> None:
    """Its binary codecs (for the COPY) decode what Postgres sends like asyncpg's own."""

    async def read() -> list[Any]:
        pool = await create_pool(migrated_pg_url, 1)
        try:
            return [
                await pool.fetchval("SELECT $1::jsonb", {"a": ["é", 1.5, None]}),
                await pool.fetchval("""SELECT '{"b": [true, "\\u00e9"]}'::jsonb"""),
                await pool.fetchval("SELECT $1::inet", "192.0.2.1"),
                await pool.fetchval("SELECT $1::inet", "2001:db8::1"),
                await pool.fetchval("SELECT '10.1.2.3/8'::inet"),
                await pool.fetchval("SELECT host($1::inet)", "::ffff:192.0.2.9"),
            ]
        finally:
            await pool.close()

    assert asyncio.run(read()) == [
        {"a": ["é", 1.5, None]},
        {"b": [True, "é"]},
        ipaddress.ip_address("192.0.2.1"),
        ipaddress.ip_address("2001:db8::1"),
        ipaddress.ip_interface("10.1.2.3/8"),
        "::ffff:192.0.2.9",
    ]
