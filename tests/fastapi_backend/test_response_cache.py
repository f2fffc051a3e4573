"""The FastAPI response cache treats a hanging Postgres as a miss, quickly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from backends.core.persistence.sql import CACHE_READ_TIMEOUT_S
from backends.fastapi_service.database import create_pool
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
