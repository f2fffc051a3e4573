"""The shared calibration history survives a Postgres restart (its pooled connections die)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from backends.core.complexity.calibration import CalibrationSample
from backends.core.complexity.pg_history import PostgresCalibrationHistory
from backends.core.errors import ProviderUnavailable
from tests.persistence.tcp_proxy import TcpProxy, relay_to


@pytest.fixture
def proxy(migrated_pg_url: str) -> Iterator[TcpProxy]:
    with relay_to(migrated_pg_url) as relay:
        yield relay


@pytest.fixture
def history(migrated_pg_url: str, proxy: TcpProxy) -> Iterator[PostgresCalibrationHistory]:
    dsn = proxy.dsn_through(migrated_pg_url)
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
