"""The Django response cache treats a frozen Postgres as a miss, and then leaves it alone.

The cache record is read through ``PgReader`` (threads of its own); before, the request
thread read it on Django's connection and waited as long as the frozen server did.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

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
