"""Request logs, usage aggregates and cache-hit counters, written in background batches.

Nothing here adds a database round-trip to the response path: requests enqueue records
and return; one task flushes every ``interval`` (or sooner when a batch fills) in one
transaction. ``stop()`` drains the queue, so a clean shutdown loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import asyncpg

from backends.core.persistence import sql
from backends.core.persistence.records import RequestRecord, request_params, usage_upserts
from backends.core.persistence.write_policy import BatchRetry, EarlyHits

logger = logging.getLogger(__name__)


class RequestLogWriter:
    def __init__(self, pool: asyncpg.Pool[Any], interval_s: float, batch_size: int) -> None:
        self._pool = pool
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._records: list[RequestRecord] = []
        self._cache_hits: Counter[str] = Counter()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._retry = BatchRetry()
        self._early_hits = EarlyHits()

    def submit(self, record: RequestRecord) -> None:
        """Queue one request row (and its usage delta); never blocks."""
        self._records.append(record)
        if len(self._records) >= self._batch_size:
            self._wakeup.set()

    def record_cache_hit(self, cache_key: str) -> None:
        self._cache_hits[cache_key] += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="request-log-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        async with self._flush_lock:
            self._cache_hits.update(self._early_hits.take())
            while self._records or self._cache_hits:
                records, self._records = (
                    self._records[: self._batch_size],
                    self._records[self._batch_size :],
                )
                hits, self._cache_hits = self._cache_hits, Counter()
                await self._write(records, hits)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._interval_s)
            self._wakeup.clear()
            try:
                await self.flush()
            except Exception:  # a flaky database must not kill the writer
                logger.exception("request-log flush failed; will retry")
                await asyncio.sleep(self._interval_s)

    async def _write(self, records: list[RequestRecord], hits: Counter[str]) -> None:
        found: dict[str, bool] = {}
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if records:
                    await conn.executemany(sql.INSERT_REQUEST, [request_params(r) for r in records])
                    await conn.executemany(sql.UPSERT_USAGE, usage_upserts(records))
                for cache_key, count in sorted(hits.items()):
                    status = await conn.execute(sql.INCREMENT_CACHE_HITS, count, cache_key)
                    found[cache_key] = status != "UPDATE 0"
        except Exception:
            if self._retry.failed():  # put the batch back so the next flush (or stop) retries it
                self._records[:0] = records
                self._cache_hits.update(hits)
            else:
                logger.error("dropping %d request-log rows after %d failed attempts",
                             len(records), self._retry.max_attempts)  # fmt: skip
            raise
        self._retry.succeeded()
        for cache_key, count in hits.items():  # only once the increments are committed
            self._early_hits.settle(cache_key, count, found[cache_key])
