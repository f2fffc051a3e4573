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
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from backends.core.persistence import sql
from backends.core.persistence.records import (
    CacheRow,
    RequestRecord,
    cache_params,
    request_params,
    usage_upserts,
)
from backends.core.persistence.write_policy import (
    DEFAULT_BUFFER_ROWS,
    Backlog,
    EarlyHits,
    IsolatingWrite,
    WriterCounts,
    is_refusal_sqlstate,
)

logger = logging.getLogger(__name__)
_PAYLOAD_COLUMNS = (6, 7)  # request_payload, response_payload in sql.INSERT_REQUEST


def is_refusal(exc: BaseException) -> bool:
    """The database (or the driver, encoding a parameter) refused these rows for their data."""
    if isinstance(exc, psycopg.Error):
        if exc.sqlstate is not None:
            return is_refusal_sqlstate(exc.sqlstate)
        # no SQLSTATE: refused by the driver itself (a NUL in a text value, a bad parameter)
        # when a DataError/ProgrammingError, else the connection failed (OperationalError)
        return isinstance(exc, psycopg.DataError | psycopg.ProgrammingError)
    return isinstance(exc, ValueError | TypeError)


class BackgroundWriter:
    def __init__(
        self,
        database_url: str,
        interval_s: float,
        batch_size: int,
        connect_timeout_s: int = 5,
        buffer_rows: int = DEFAULT_BUFFER_ROWS,
    ) -> None:
        self._database_url = database_url
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._connect_timeout_s = connect_timeout_s
        self._backlog: Backlog[Callable[[], RequestRecord]] = Backlog(buffer_rows)
        self._inflight: list[RequestRecord] = []  # taken from the backlog, not committed yet
        self._cache_rows: list[CacheRow] = []
        self._hits: Counter[str] = Counter()
        self._early_hits = EarlyHits()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._written = 0
        self._refused = 0
        self._database_away = False

    def submit(self, build: Callable[[], RequestRecord]) -> None:
        """Queue one request row; never blocks, never touches the database."""
        self._backlog.append(build)
        if len(self._backlog) >= self._batch_size:
            self._wakeup.set()

    def put_cache(self, row: CacheRow) -> None:
        with self._lock:
            self._cache_rows.append(row)

    def record_cache_hit(self, cache_key: str) -> None:
        with self._lock:
            self._hits[cache_key] += 1

    def counts(self) -> WriterCounts:
        """Rows written, dropped (refused, overflowed) and still pending, since start."""
        return WriterCounts(
            written=self._written,
            refused=self._refused,
            overflowed=self._backlog.overflowed,
            pending=len(self._backlog) + len(self._inflight),
        )

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

    def flush(self) -> None:
        """Write everything queued; raises (keeping the rows) when the database is away.

        Called by the writer thread only (tests call it on a writer never started).
        """
        with self._lock:
            self._hits.update(self._early_hits.take())
        while True:
            self._inflight = self._inflight or self._take_records()
            with self._lock:
                cache_rows, self._cache_rows = self._cache_rows, []
                hits, self._hits = self._hits, Counter()
            if not (self._inflight or cache_rows or hits):
                break
            try:
                if cache_rows:
                    self._write_cache_rows(self._connection(), cache_rows)
                self._write_isolating(self._inflight, hits)
            except BaseException:
                self._reset_connection()
                with self._lock:  # not committed: counted at the next flush
                    self._hits.update(hits)
                raise
        if self._database_away:
            self._database_away = False
            logger.warning("request-log database reachable again; buffered rows written")

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wakeup.wait(self._interval_s)
            self._wakeup.clear()
            self._flush_logged()
        if not self._flush_logged():
            logger.error("database unavailable at shutdown: %d request-log rows not written",
                         self.counts().pending)  # fmt: skip
        self._reset_connection()

    def _flush_logged(self) -> bool:
        try:
            self.flush()
        except Exception as exc:  # the database is away: keep the rows, try again later
            if not self._database_away:
                self._database_away = True
                logger.warning("request-log flush failed (%s: %s); buffering up to %d rows",
                               type(exc).__name__, exc, self._backlog.max_rows)  # fmt: skip
            return False
        return True

    def _take_records(self) -> list[RequestRecord]:
        records: list[RequestRecord] = []
        for build in self._backlog.take(self._batch_size):
            try:
                records.append(build())
            except Exception:  # one unloggable request must not block the others
                self._refused += 1
                logger.exception("could not build a request-log record; skipped")
        return records

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._database_url, autocommit=True, connect_timeout=self._connect_timeout_s
            )
        return self._conn

    def _write_isolating(self, records: list[RequestRecord], hits: Counter[str]) -> None:
        """Commit a batch; when the database refuses it, drop only the rows it refuses alone.

        Raises on any other failure, with the uncommitted rows left in ``_inflight``.
        """
        write = IsolatingWrite(records, hits)
        while (attempt := write.next()) is not None:
            try:
                self._write(*attempt)
            except Exception as exc:
                if not is_refusal(exc):
                    self._inflight = write.uncommitted()
                    raise
                write.refused(exc)
            else:
                write.committed()
        self._inflight = []
        self._refused += len(write.refused_rows)

    def _write(self, records: list[RequestRecord], hits: Counter[str]) -> None:
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            if records:
                cur.executemany(sql.as_pyformat(sql.INSERT_REQUEST), map(_insert_params, records))
                cur.executemany(sql.as_pyformat(sql.UPSERT_USAGE), usage_upserts(records))
            found = self._count_hits(cur, hits)
        self._written += len(records)
        for key, count in hits.items():  # only once the increments are committed
            self._early_hits.settle(key, count, found[key])

    def _count_hits(self, cur: psycopg.Cursor[Any], hits: Counter[str]) -> dict[str, bool]:
        """Increment hit counters; report per key whether its cache row exists yet.

        A worker can serve a hit from Redis before the worker that cached the response has
        flushed its row; such hits are retried for a few flushes instead of being lost.
        """
        found: dict[str, bool] = {}
        for key, count in sorted(hits.items()):
            cur.execute(sql.as_pyformat(sql.INCREMENT_CACHE_HITS), (count, key))
            found[key] = bool(cur.rowcount)
        return found

    def _write_cache_rows(self, conn: psycopg.Connection[Any], rows: list[CacheRow]) -> None:
        """Upsert cache rows; one row Postgres refuses is dropped alone (the cache is optional)."""
        params = [cache_params(row) for row in sorted(rows, key=lambda r: r.key)]
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql.as_pyformat(sql.UPSERT_CACHE), params)
            return
        except psycopg.DataError:
            pass
        for one in params:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(sql.as_pyformat(sql.UPSERT_CACHE), one)
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
