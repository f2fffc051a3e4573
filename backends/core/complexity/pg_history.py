"""Calibration history in the shared ml_complexity_samples table (both backends see it)."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg_pool import ConnectionPool

from backends.core.complexity.calibration import CalibrationSample
from backends.core.persistence import sql

HISTORY_LIMIT = 500


class PostgresCalibrationHistory:
    """Reads the latest samples and appends new ones; ``service_name`` tags the writer."""

    def __init__(self, pool: ConnectionPool, service_name: str) -> None:
        self._pool = pool
        self._service_name = service_name

    def samples(self) -> Sequence[CalibrationSample]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                sql.as_pyformat(sql.SELECT_COMPLEXITY_SAMPLES), (HISTORY_LIMIT,)
            ).fetchall()
        return [
            CalibrationSample(task_type=row[0], pre_score=row[1], actual_score=row[2])
            for row in reversed(rows)  # oldest first, as the in-memory history keeps them
        ]

    def record(self, sample: CalibrationSample) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                sql.as_pyformat(sql.INSERT_COMPLEXITY_SAMPLE),
                (sample.task_type, sample.pre_score, sample.actual_score, self._service_name),
            )
