"""Calibration history in the shared ml_complexity_samples table (both backends see it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from backends.core.complexity.calibration import CalibrationSample
from backends.core.errors import ProviderUnavailable
from backends.core.persistence import sql

HISTORY_LIMIT = 500
T = TypeVar("T")


class PostgresCalibrationHistory:
    """Reads the latest samples and appends new ones; ``service_name`` tags the writer."""

    def __init__(self, pool: ConnectionPool, service_name: str) -> None:
        self._pool = pool
        self._service_name = service_name

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
        connection broke may be stored twice: harmless to a calibration). Still failing:
        the database is down (503).
        """
        for attempt in range(2):
            try:
                with self._pool.connection() as conn:
                    return work(conn)
            except psycopg.OperationalError as exc:
                if attempt == 1:
                    raise ProviderUnavailable(
                        f"the calibration history database is unavailable: {exc}"
                    ) from exc
        raise AssertionError("unreachable")
