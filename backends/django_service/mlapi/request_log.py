"""Request logs, usage aggregates and response-cache rows, written by one background thread.

A sync worker must not spend a database round-trip per request on logging: requests
enqueue a record *factory* (payloads are dumped and sanitised in this thread, after the
response is sent) and return. The thread flushes every ``interval`` (or sooner when a
batch fills) through its own psycopg connection, with the SQL the FastAPI backend uses,
so rows are identical whichever backend wrote them. ``stop()`` drains the queue.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from backends.core.persistence import sql
from backends.core.persistence.records import RequestRecord, request_params, usage_upserts
from backends.core.persistence.write_policy import BatchRetry, EarlyHits

logger = logging.getLogger(__name__)
MAX_PENDING = 50_000  # beyond this (database down for long) the oldest records are dropped
_PAYLOAD_COLUMNS = (6, 7)  # request_payload, response_payload in sql.INSERT_REQUEST


@dataclass(frozen=True)
class CacheRow:
    """One ml_service_cache upsert (the body is the exact JSON served)."""

    key: str
    request_hash: str
    endpoint: str
    service_name: str
    body: bytes
    ttl_s: int


@cache
def _pyformat(statement: str) -> str:
    return sql.as_pyformat(statement)


class BackgroundWriter:
    def __init__(
        self, database_url: str, interval_s: float, batch_size: int, connect_timeout_s: int = 5
    ) -> None:
        self._database_url = database_url
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._connect_timeout_s = connect_timeout_s
        self._pending: deque[Callable[[], RequestRecord]] = deque(maxlen=MAX_PENDING)
        self._retry: list[RequestRecord] = []
        self._cache_rows: list[CacheRow] = []
        self._hits: Counter[str] = Counter()
        self._early_hits = EarlyHits()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._batch_retry = BatchRetry()

    def submit(self, build: Callable[[], RequestRecord]) -> None:
        """Queue one request row; never blocks, never touches the database."""
        self._pending.append(build)
        if len(self._pending) >= self._batch_size:
            self._wakeup.set()

    def put_cache(self, row: CacheRow) -> None:
        with self._lock:
            self._cache_rows.append(row)

    def record_cache_hit(self, cache_key: str) -> None:
        with self._lock:
            self._hits[cache_key] += 1

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the thread after a last flush of everything queued (idempotent)."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.wait(self._interval_s)
            self._wakeup.clear()
            self._flush_logged()
        self._flush_logged()
        if self._conn is not None:
            self._conn.close()

    def _flush_logged(self) -> None:
        try:
            self._flush()
        except Exception:  # a flaky database must not kill the writer
            logger.exception("request-log flush failed; will retry")

    def _flush(self) -> None:
        deferred = self._early_hits.take()
        with self._lock:
            self._hits.update(deferred)
        while True:
            records = self._retry or self._take_records()
            self._retry = []
            with self._lock:
                cache_rows, self._cache_rows = self._cache_rows, []
                hits, self._hits = self._hits, Counter()
            if not (records or cache_rows or hits):
                return
            self._write(records, cache_rows, hits)

    def _take_records(self) -> list[RequestRecord]:
        records: list[RequestRecord] = []
        while self._pending and len(records) < self._batch_size:
            build = self._pending.popleft()
            try:
                records.append(build())
            except Exception:  # one unloggable request must not block the others
                logger.exception("could not build a request-log record; skipped")
        return records

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._database_url, autocommit=True, connect_timeout=self._connect_timeout_s
            )
        return self._conn

    def _write(
        self, records: list[RequestRecord], cache_rows: list[CacheRow], hits: Counter[str]
    ) -> None:
        try:
            conn = self._connection()
            if cache_rows:
                self._write_cache_rows(conn, cache_rows)
            with conn.transaction(), conn.cursor() as cur:
                if records:
                    cur.executemany(_pyformat(sql.INSERT_REQUEST), map(_insert_params, records))
                    cur.executemany(_pyformat(sql.UPSERT_USAGE), usage_upserts(records))
                found = self._count_hits(cur, hits)
        except Exception:
            self._reset_connection()
            if self._batch_retry.failed():  # keep the batch so the next flush (or stop) retries it
                self._retry = records
                with self._lock:
                    self._hits.update(hits)
            else:
                logger.error("dropping %d request-log rows after %d failed attempts",
                             len(records), self._batch_retry.max_attempts)  # fmt: skip
            raise
        self._batch_retry.succeeded()
        for key, count in hits.items():  # only once the increments are committed
            self._early_hits.settle(key, count, found[key])

    def _count_hits(self, cur: psycopg.Cursor[Any], hits: Counter[str]) -> dict[str, bool]:
        """Increment hit counters; report per key whether its cache row exists yet.

        A worker can serve a hit from Redis before the worker that cached the response has
        flushed its row; such hits are retried for a few flushes instead of being lost.
        """
        found: dict[str, bool] = {}
        for key, count in sorted(hits.items()):
            cur.execute(_pyformat(sql.INCREMENT_CACHE_HITS), (count, key))
            found[key] = bool(cur.rowcount)
        return found

    def _write_cache_rows(self, conn: psycopg.Connection[Any], rows: list[CacheRow]) -> None:
        """Upsert cache rows; one row Postgres refuses is dropped alone (the cache is optional)."""
        params = [_cache_params(row) for row in sorted(rows, key=lambda r: r.key)]
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(_pyformat(sql.UPSERT_CACHE), params)
            return
        except psycopg.DataError:
            pass
        for one in params:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(_pyformat(sql.UPSERT_CACHE), one)
            except psycopg.DataError:
                logger.warning("postgres refused a cache row for %s", one[2], exc_info=True)

    def _reset_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def _insert_params(record: RequestRecord) -> tuple[Any, ...]:
    params = list(request_params(record))
    for index in _PAYLOAD_COLUMNS:
        if params[index] is not None:
            params[index] = Jsonb(params[index])
    return tuple(params)


def _cache_params(row: CacheRow) -> tuple[Any, ...]:
    # The body is JSON text: sent as-is (an untyped literal Postgres casts to jsonb).
    return (
        row.key, row.request_hash, row.endpoint, row.service_name,
        row.body.decode(), float(row.ttl_s), len(row.body),
    )  # fmt: skip
