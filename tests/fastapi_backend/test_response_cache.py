"""The FastAPI response cache treats a hanging Postgres as a miss, quickly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from backends.core.persistence.memory_cache import MemoryCache
from backends.core.persistence.sql import CACHE_READ_TIMEOUT_S
from backends.fastapi_service.database import create_pool
from backends.fastapi_service.request_log import RequestLogWriter
from backends.fastapi_service.response_cache import ResponseCache
from tests.persistence.tcp_proxy import TcpProxy, relay_to


@pytest.fixture
def proxy(migrated_pg_url: str) -> Iterator[TcpProxy]:
    with relay_to(migrated_pg_url) as relay:
        yield relay


async def test_a_frozen_database_is_a_cache_miss(migrated_pg_url: str, proxy: TcpProxy) -> None:
    dsn = proxy.dsn_through(migrated_pg_url)
    pool = await create_pool(dsn, 2)
    cache = ResponseCache(pool, None, None, "test", 60)
    try:
        assert await cache.get("mlcache:none") is None  # the database answers: a plain miss
        proxy.freeze()
        started = time.monotonic()
        # the wait_for only turns a hang into a failure; the cache must give up by itself
        assert await asyncio.wait_for(cache.get("mlcache:none"), timeout=10) is None
        print(f"miss on a frozen database after {time.monotonic() - started:.2f} s"
              f" (read timeout {CACHE_READ_TIMEOUT_S} s)")  # fmt: skip
    finally:
        proxy.thaw()
        pool.terminate()


def _in_use(pool: asyncpg.Pool[Any]) -> int:
    """Connections of ``pool`` that a caller holds (open and not idle)."""
    return pool.get_size() - pool.get_idle_size()


async def test_an_abandoned_read_gives_its_connection_back(
    migrated_pg_url: str, proxy: TcpProxy
) -> None:
    """On a frozen database each read that gives up hands its connection back to the pool.

    A pool of N and N + 1 reads in a row, each of them tried (no breaker interval): every
    one a miss within the read timeout, and no connection still held after it. Before,
    an abandoned read kept its connection until asyncpg's 30 s command timeout and the
    cancel request after it (the server is frozen too), so N such reads drained the pool.
    """
    size = 2
    pool = await create_pool(proxy.dsn_through(migrated_pg_url), size)
    writer = RequestLogWriter(pool, interval_s=60, batch_size=100)  # flushed by the test
    cache = ResponseCache(pool, None, writer, "test", 60, retry_s=0.0)
    try:
        body = b'{"label":"positive"}'
        await cache.put("mlcache:kept", "hash", "/api/v1/test", body)
        await writer.flush()
        assert await cache.get("mlcache:kept") == body  # read from the row (no Redis here)
        assert await cache.get("mlcache:none") is None
        assert (_in_use(pool), pool.get_idle_size()) == (0, 1)  # answered: kept, not closed
        proxy.freeze()
        waits = []
        for n in range(size + 1):
            started = time.monotonic()
            assert await asyncio.wait_for(cache.get(f"mlcache:none-{n}"), timeout=10) is None
            waits.append(time.monotonic() - started)
            assert _in_use(pool) == 0, f"read {n + 1} of {size + 1} still holds its connection"
        print("misses on a frozen database after", ", ".join(f"{w:.2f} s" for w in waits))
        assert max(waits) < 5 * CACHE_READ_TIMEOUT_S  # without a bound: 30 s, never here
        proxy.thaw()
        assert await pool.fetchval("SELECT 1", timeout=5) == 1  # the pool opens new ones
    finally:
        proxy.thaw()
        pool.terminate()


async def test_reads_of_a_locked_row_leave_the_pool_to_the_others(migrated_pg_url: str) -> None:
    """A live server where one row's reads hang (another transaction holds its lock): after
    N such reads with a pool of N, a cached row is still served.

    Before, each hung read kept its connection for asyncpg's 30 s command timeout, so the
    next read waited for a free connection past its 0.5 s and a hit became a miss.
    """
    size = 2
    pool = await create_pool(migrated_pg_url, size)
    writer = RequestLogWriter(pool, interval_s=60, batch_size=100)  # flushed by the test
    cache = ResponseCache(pool, None, writer, "test", 60, retry_s=0.0)
    locker = await asyncpg.connect(migrated_pg_url)
    body = b'{"label":"positive"}'
    try:
        for key in ("mlcache:locked", "mlcache:served"):
            await cache.put(key, "hash", "/api/v1/test", body)
        await writer.flush()
        await locker.execute("BEGIN")
        await locker.execute(
            "SELECT 1 FROM ml_service_cache WHERE cache_key = 'mlcache:locked' FOR UPDATE"
        )
        for _ in range(size):
            assert await asyncio.wait_for(cache.get("mlcache:locked"), timeout=10) is None
        assert await asyncio.wait_for(cache.get("mlcache:served"), timeout=10) == body
    finally:
        await locker.close()  # its transaction ends: the hung UPDATEs go on and find no client
        pool.terminate()


async def test_a_released_connection_is_not_sent_a_reset_query(migrated_pg_url: str) -> None:
    """A read costs one round trip: the pool hands its connection back without asyncpg's
    reset statement (the backend changes no session state). pg_stat_activity shows the
    last statement each server process ran."""
    pool = await create_pool(migrated_pg_url, 1)
    observer = await asyncpg.connect(migrated_pg_url)
    try:
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
        assert await ResponseCache(pool, None, None, "test", 60).get("mlcache:none") is None
        last = await observer.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        assert "ml_service_cache" in last, last  # not "SELECT pg_advisory_unlock_all(); ..."
    finally:
        await observer.close()
        await pool.close()


async def test_concurrent_misses_share_one_read(migrated_pg_url: str, proxy: TcpProxy) -> None:
    """Requests that miss Redis while a Postgres read runs are read together in the next
    statement, each getting its own row, and every request's hit counted. Before, each
    miss was its own round trip (~9% of the event loop on uncached embeddings)."""
    pool = await create_pool(proxy.dsn_through(migrated_pg_url), 1)  # no new connections
    writer = RequestLogWriter(pool, interval_s=60, batch_size=100)  # flushed by the test
    cache = ResponseCache(pool, None, writer, "test", 60)
    bodies = {f"mlcache:many-{n}": b'{"n":%d}' % n for n in range(3)}
    try:
        for key, body in bodies.items():
            await cache.put(key, "hash", "/api/v1/test", body)
        await writer.flush()
        assert await cache.get("mlcache:many-warm") is None  # the statement is prepared
        asked = [*bodies, *bodies, "mlcache:many-none", "mlcache:many-0"] * 2
        sent = proxy.sent
        answers = await asyncio.gather(*(cache.get(key) for key in asked))
        assert answers == [bodies.get(key) for key in asked]
        assert proxy.sent - sent <= 2, "one statement for the first miss, one for the rest"
        hits = dict(
            await pool.fetch(
                "SELECT cache_key, hit_count FROM ml_service_cache WHERE cache_key = ANY($1)",
                list(bodies),
            )
        )
        assert hits == {key: asked.count(key) for key in bodies}
    finally:
        await pool.execute(
            "DELETE FROM ml_service_cache WHERE cache_key LIKE 'mlcache:many-%'", timeout=5
        )
        pool.terminate()


async def test_concurrent_misses_on_a_frozen_database_cost_one_timeout(
    migrated_pg_url: str, proxy: TcpProxy
) -> None:
    pool = await create_pool(proxy.dsn_through(migrated_pg_url), 4)
    cache = ResponseCache(pool, None, None, "test", 60)
    try:
        assert await cache.get("mlcache:none") is None
        proxy.freeze()
        sent = proxy.sent
        started = time.monotonic()
        gets = (cache.get(f"mlcache:frozen-{n}") for n in range(8))
        assert await asyncio.wait_for(asyncio.gather(*gets), timeout=10) == [None] * 8
        waited = time.monotonic() - started
        assert proxy.sent - sent == 1, "one statement tried, the others waited for it"
        assert waited < 4 * CACHE_READ_TIMEOUT_S
        assert await cache.get("mlcache:frozen-next") is None  # the breaker: not tried
        assert proxy.sent - sent == 1
    finally:
        proxy.thaw()
        pool.terminate()


def _through(proxy: TcpProxy, redis_url: str) -> str:
    """``redis_url`` with the relay as its host and port."""
    return urlsplit(redis_url)._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()


async def test_concurrent_puts_share_one_redis_write(redis_url: str) -> None:
    """Bodies kept while a Redis write runs go in the next one, one pipeline: every body
    stored with its TTL, in two round trips instead of one per body (each SET on its own
    cost the event loop ~75 us of redis-py at 64 connections of uncached embeddings)."""
    with relay_to(redis_url) as proxy:
        redis = aioredis.Redis.from_url(_through(proxy, redis_url))
        cache = ResponseCache(None, redis, None, "test", 60)
        bodies = {f"mlcache:put-{n}": b'{"n":%d}' % n for n in range(8)}
        try:
            await redis.ping()  # connected before counting
            sent = proxy.sent
            await asyncio.gather(
                *(cache.put(k, "hash", "/api/v1/test", b) for k, b in bodies.items())
            )
            assert proxy.sent - sent <= 2, "one SET for the first body, one pipeline for the rest"
            assert await redis.mget(list(bodies)) == list(bodies.values())
            ttls = [await redis.ttl(key) for key in bodies]
            assert all(0 < ttl <= 60 for ttl in ttls), ttls
        finally:
            await redis.delete(*bodies)
            await redis.aclose()  # type: ignore[attr-defined]


async def test_a_failed_redis_write_still_answers(redis_url: str) -> None:
    """Redis gone: the puts waiting on one write all return (the cache is optional), the
    breaker keeps the next ones away, and the memory layer still has the bodies."""
    with relay_to(redis_url) as proxy:
        redis = aioredis.Redis.from_url(
            _through(proxy, redis_url), socket_timeout=0.5, socket_connect_timeout=0.5
        )
        memory = MemoryCache(1 << 20, 60)
        cache = ResponseCache(None, redis, None, "test", 60, memory=memory)
        try:
            await redis.ping()
            proxy.freeze()
            puts = (cache.put(f"mlcache:gone-{n}", "h", "/api/v1/test", b"{}") for n in range(4))
            await asyncio.wait_for(asyncio.gather(*puts), timeout=10)
            sent = proxy.sent
            await asyncio.wait_for(cache.put("mlcache:gone-next", "h", "/x", b"{}"), timeout=1)
            assert proxy.sent == sent  # the breaker: not tried
            assert await cache.get("mlcache:gone-0") == b"{}"  # from memory
        finally:
            proxy.thaw()
            await redis.aclose()  # type: ignore[attr-defined]


async def test_concurrent_reads_share_one_redis_read(redis_url: str) -> None:
    """Keys asked while a Redis read runs are read together in the next one (MGET), each
    request getting its own body or miss, in two round trips instead of one per key."""
    with relay_to(redis_url) as proxy:
        redis = aioredis.Redis.from_url(_through(proxy, redis_url))
        cache = ResponseCache(None, redis, None, "test", 60)
        bodies = {f"mlcache:get-{n}": b'{"n":%d}' % n for n in range(4)}
        try:
            await redis.mset(bodies)  # type: ignore[arg-type]  # its stub: keys str | bytes
            asked = [*bodies, "mlcache:get-none", *bodies, "mlcache:get-1"]
            sent = proxy.sent
            answers = await asyncio.gather(*(cache.get(key) for key in asked))
            assert answers == [bodies.get(key) for key in asked]
            assert proxy.sent - sent <= 2, "one GET for the first key, one MGET for the rest"
        finally:
            await redis.delete(*bodies)
            await redis.aclose()  # type: ignore[attr-defined]


async def test_reads_waiting_on_a_frozen_redis_are_misses(redis_url: str) -> None:
    """Redis frozen: every read queued behind one that times out is answered as a miss,
    and the breaker keeps the next ones away."""
    with relay_to(redis_url) as proxy:
        redis = aioredis.Redis.from_url(
            _through(proxy, redis_url), socket_timeout=1.0, socket_connect_timeout=1.0
        )
        cache = ResponseCache(None, redis, None, "test", 60)
        try:
            await redis.ping()
            proxy.freeze()
            started = time.monotonic()
            gets = (cache.get(f"mlcache:frozen-{n}") for n in range(6))
            assert await asyncio.wait_for(asyncio.gather(*gets), timeout=10) == [None] * 6
            assert time.monotonic() - started < 5  # no read waits past its own timeout
            sent = proxy.sent
            assert await cache.get("mlcache:frozen-next") is None
            assert proxy.sent == sent  # the breaker: not tried
        finally:
            proxy.thaw()
            await redis.aclose()  # type: ignore[attr-defined]
