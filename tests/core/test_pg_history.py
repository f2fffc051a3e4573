"""The shared calibration history survives a Postgres restart (its pooled connections die)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from psycopg_pool import ConnectionPool

from backends.core.complexity.calibration import CalibrationSample
from backends.core.complexity.pg_history import PostgresCalibrationHistory
from backends.core.errors import ProviderUnavailable
from tests.persistence.tcp_proxy import TcpProxy


@pytest.fixture
def proxy(migrated_pg_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(migrated_pg_url)
    relay = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    relay.up()
    yield relay
    relay.down()


@pytest.fixture
def history(migrated_pg_url: str, proxy: TcpProxy) -> Iterator[PostgresCalibrationHistory]:
    parts = urlsplit(migrated_pg_url)
    dsn = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
    pool = ConnectionPool(dsn, min_size=1, max_size=1, timeout=2, open=True)
    try:
        yield PostgresCalibrationHistory(pool, "test")
    finally:
        pool.close()


def test_the_first_use_after_a_restart_gets_a_fresh_connection(
    history: PostgresCalibrationHistory, proxy: TcpProxy
) -> None:
    history.record(CalibrationSample(task_type="restart-test", pre_score=3.0, actual_score=4.0))
    proxy.down()  # the server went away: the pooled connection is dead ...
    proxy.up()  # ... and it is back, but the pool does not know yet
    samples = history.samples()
    assert any(s.task_type == "restart-test" for s in samples)


def test_a_database_that_stays_down_is_unavailable_not_an_error(
    history: PostgresCalibrationHistory, proxy: TcpProxy
) -> None:
    history.samples()
    proxy.down()
    with pytest.raises(ProviderUnavailable):
        history.samples()
