"""Calibration history in the shared ml_complexity_samples table (both backends see it).

Each use of a connection ends within ``query_timeout_s`` (``persistence.deadline``: a
frozen Postgres would otherwise hold a complexity request without limit), and after a
connection-level failure the table is skipped for ``retry_s`` (``shared_schemas.breaker``):
complexity requests get their 503 at once meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from backends.core.complexity.calibration import CalibrationSample
from backends.core.errors import ProviderUnavailable
from backends.core.persistence import sql
from backends.core.persistence.deadline import QueryTimeout, Watchdog
from shared_schemas.breaker import CircuitBreaker

HISTORY_LIMIT = 500
RETRY_S = 5.0
T = TypeVar("T")


class PostgresCalibrationHistory:
    """Reads the latest samples and appends new ones; ``service_name`` tags the writer."""

    def __init__(
        self,
        pool: ConnectionPool,
        service_name: str,
        query_timeout_s: float = 10.0,
        retry_s: float = RETRY_S,
    ) -> None:
        self._pool = pool
        self._service_name = service_name
        self._query_timeout_s = query_timeout_s
        self._watchdog = Watchdog("history-deadline")
        self._breaker = CircuitBreaker(retry_s)

    def samples(self) -> Sequence[CalibrationSample]:
        rows = self._run(
            lambda conn: conn.execute(
                sql.as_pyformat(sql.SELECT_COMPLEXITY_SAMPLES), (HISTORY_LIMIT,)
            ).fetchall()
        )
        return [
            CalibrationSample(task_type=row[0], pre_score=row[1], actual_score=row[2])
            for row in reversed(rows)  # oldest first, as the in-memory history keeps them
        ]

    def record(self, sample: CalibrationSample) -> None:
        self._run(
            lambda conn: conn.execute(
                sql.as_pyformat(sql.INSERT_COMPLEXITY_SAMPLE),
                (sample.task_type, sample.pre_score, sample.actual_score, self._service_name),
            )
        )

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work`` on a pooled connection, once more on a fresh one if that one was dead.

        After a Postgres restart every idle pooled connection is closed server-side and
        the pool cannot know until it is used: the first request per connection failed
        (a 500). The pool discards a broken connection when it is given back, so the
        second attempt gets a new one (a sample whose INSERT committed just before the
        connection broke may be stored twice: harmless to a calibration). Still failing,
        or past the deadline (never retried: a frozen server would cost it twice): the
        database is down (503).
        """
        if not self._breaker.allow():
            raise self._unavailable(f"it failed less than {self._breaker.retry_s:g} s ago")
        for attempt in range(2):
            try:
                with (
                    self._pool.connection() as conn,
                    self._watchdog.deadline(conn, self._query_timeout_s),
                ):
                    result = work(conn)
            except psycopg.OperationalError as exc:
                if attempt == 1 or isinstance(exc, (QueryTimeout, PoolTimeout)):
                    self._breaker.failed()
                    raise self._unavailable(str(exc)) from exc
            except BaseException:
                self._breaker.succeeded()  # the database answered (e.g. refused a row)
                raise
            else:
                self._breaker.succeeded()
                return result
        raise AssertionError("unreachable")

    def _unavailable(self, why: str) -> ProviderUnavailable:
        error = ProviderUnavailable(f"the calibration history database is unavailable: {why}")
        error.retry_after_s = self._breaker.retry_after_s
        return error
