"""Request logs, usage aggregates, response-cache rows and hit counters, written in
background batches.

Nothing here adds a database round-trip to the response path: requests enqueue records
and return; one task flushes every ``interval`` (or sooner when a batch fills) in one
transaction. The rules shared with the Django writer (buffer across an outage, isolate a
refused row, early cache hits) are in ``backends.core.persistence.write_policy``.
``stop()`` drains the queue, so a clean shutdown loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import asyncpg

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


def is_refusal(exc: BaseException) -> bool:
    """The database (or the driver, encoding a parameter) refused these rows for their data."""
    if isinstance(exc, asyncpg.PostgresError):
        return is_refusal_sqlstate(exc.sqlstate)
    # asyncpg.DataError (a parameter it cannot encode) is a ValueError; connection
    # failures are OSError, TimeoutError or asyncpg.InterfaceError
    return isinstance(exc, ValueError | TypeError)


class RequestLogWriter:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        interval_s: float,
        batch_size: int,
        buffer_rows: int = DEFAULT_BUFFER_ROWS,
    ) -> None:
        self._pool = pool
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._backlog: Backlog[RequestRecord] = Backlog(buffer_rows)
        self._inflight: list[RequestRecord] = []  # taken from the backlog, not committed yet
        self._cache_hits: Counter[str] = Counter()
        self._cache_rows: list[CacheRow] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._early_hits = EarlyHits()
        self._written = 0
        self._refused = 0
        self._database_away = False

    def submit(self, record: RequestRecord) -> None:
        """Queue one request row (and its usage delta); never blocks."""
        self._backlog.append(record)
        if len(self._backlog) >= self._batch_size:
            self._wakeup.set()

    def put_cache(self, row: CacheRow) -> None:
        """Queue one response-cache row (Redis already has the entry); never blocks."""
        self._cache_rows.append(row)
        if len(self._cache_rows) >= self._batch_size:
            self._wakeup.set()

    def record_cache_hit(self, cache_key: str) -> None:
        self._cache_hits[cache_key] += 1

    def counts(self) -> WriterCounts:
        """Rows written, dropped (refused, overflowed) and still pending, since start."""
        return WriterCounts(
            written=self._written,
            refused=self._refused,
            overflowed=self._backlog.overflowed,
            pending=len(self._backlog) + len(self._inflight),
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="request-log-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            logger.exception("database unavailable at shutdown: %d request-log rows not written",
                             self.counts().pending)  # fmt: skip

    async def flush(self) -> None:
        """Write everything queued; raises (keeping the rows) when the database is away."""
        async with self._flush_lock:
            self._cache_hits.update(self._early_hits.take())
            while self._cache_rows:  # before the hits: a hit counted on a new row finds it
                rows, self._cache_rows = self._cache_rows, []
                await self._write_cache_rows(rows)
            while self._inflight or len(self._backlog) or self._cache_hits:
                self._inflight = self._inflight or self._backlog.take(self._batch_size)
                hits, self._cache_hits = self._cache_hits, Counter()
                try:
                    await self._write_isolating(self._inflight, hits)
                except BaseException:
                    self._cache_hits.update(hits)  # not committed: counted at the next flush
                    raise
            if self._database_away:
                self._database_away = False
                logger.warning("request-log database reachable again; buffered rows written")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._interval_s)
            self._wakeup.clear()
            try:
                await self.flush()
            except Exception as exc:  # the database is away: keep the rows, try again later
                if not self._database_away:
                    self._database_away = True
                    logger.warning("request-log flush failed (%s: %s); buffering up to %d rows",
                                   type(exc).__name__, exc, self._backlog.max_rows)  # fmt: skip
                await asyncio.sleep(self._interval_s)

    async def _write_isolating(self, records: list[RequestRecord], hits: Counter[str]) -> None:
        """Commit a batch; when the database refuses it, drop only the rows it refuses alone.

        Raises on any other failure, with the uncommitted rows left in ``_inflight``.
        """
        write = IsolatingWrite(records, hits)
        while (attempt := write.next()) is not None:
            try:
                await self._write(*attempt)
            except Exception as exc:
                if not is_refusal(exc):
                    self._inflight = write.uncommitted()
                    raise
                write.refused(exc)
            else:
                write.committed()
        self._inflight = []
        self._refused += len(write.refused_rows)

    async def _write_cache_rows(self, rows: list[CacheRow]) -> None:
        """Upsert cache rows in one statement; a row Postgres refuses is dropped alone (the
        cache is optional). Raises when the database is away: those rows are lost, the
        entries stay in Redis."""
        params = [cache_params(row) for row in sorted(rows, key=lambda r: r.key)]
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.executemany(sql.UPSERT_CACHE, params)
            return
        except Exception as exc:
            if not is_refusal(exc):
                raise
        for one in params:
            try:
                await self._pool.execute(sql.UPSERT_CACHE, *one)
            except Exception as exc:
                if not is_refusal(exc):
                    raise
                logger.warning("postgres refused a cache row for %s", one[2], exc_info=True)

    async def _write(self, records: list[RequestRecord], hits: Counter[str]) -> None:
        found: dict[str, bool] = {}
        async with self._pool.acquire() as conn, conn.transaction():
            if records:
                # COPY, not executemany of INSERT_REQUEST: one statement for the batch, where
                # executemany binds and runs the INSERT once per row (Postgres CPU per
                # cached answer ~24 -> ~18 us, A/B; the pool's jsonb and inet codecs are
                # binary for it, database.py)
                await conn.copy_records_to_table(
                    sql.REQUEST_TABLE, records=[request_params(r) for r in records],
                    columns=sql.REQUEST_COLUMNS,
                )  # fmt: skip
                await conn.executemany(sql.UPSERT_USAGE, usage_upserts(records))
            for cache_key, count in sorted(hits.items()):
                status = await conn.execute(sql.INCREMENT_CACHE_HITS, count, cache_key)
                found[cache_key] = status != "UPDATE 0"
        self._written += len(records)
        for cache_key, count in hits.items():  # only once the increments are committed
            self._early_hits.settle(cache_key, count, found[cache_key])
