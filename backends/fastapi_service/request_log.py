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
from backends.core.persistence.records import (
    RequestRecord,
    aggregate_usage,
    request_params,
    usage_params,
)

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
EARLY_HIT_RETRIES = 10


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
        self._consecutive_failures = 0
        self._deferred_hits: Counter[str] = Counter()
        self._early_hit_attempts: dict[str, int] = {}

    def submit(self, record: RequestRecord) -> None:
        """Queue one request row (and its usage delta); never blocks."""
        self._records.append(record)
        if len(self._records) >= self._batch_size:
            self._wakeup.set()

    def record_cache_hit(self, cache_key: str) -> None:
        self._cache_hits[cache_key] += 1

    def _defer_hit(self, cache_key: str, count: int) -> None:
        """A hit that arrived before its row was written (Redis is set first): retry later."""
        attempts = self._early_hit_attempts.get(cache_key, 0) + 1
        if attempts > EARLY_HIT_RETRIES:
            self._early_hit_attempts.pop(cache_key, None)
            return  # the row never came (its write failed): the hit has nowhere to go
        self._early_hit_attempts[cache_key] = attempts
        self._deferred_hits[cache_key] += count

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
            self._cache_hits.update(self._deferred_hits)
            self._deferred_hits = Counter()
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
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if records:
                    await conn.executemany(sql.INSERT_REQUEST, [request_params(r) for r in records])
                    for key, delta in sorted(
                        aggregate_usage(records).items(), key=lambda item: repr(item[0])
                    ):  # a fixed order avoids deadlocks between concurrent writers
                        await conn.execute(sql.UPSERT_USAGE, *usage_params(key, delta))
                for cache_key, count in sorted(hits.items()):
                    status = await conn.execute(sql.INCREMENT_CACHE_HITS, count, cache_key)
                    if status == "UPDATE 0":
                        self._defer_hit(cache_key, count)
        except Exception:
            self._consecutive_failures += 1
            if self._consecutive_failures >= MAX_ATTEMPTS:
                # a batch the database keeps refusing must not block every later one
                logger.error("dropping %d request-log rows after %d failed attempts",
                             len(records), MAX_ATTEMPTS)  # fmt: skip
                self._consecutive_failures = 0
            else:  # put the batch back so the next flush (or stop) retries it
                self._records[:0] = records
                self._cache_hits.update(hits)
            raise
        self._consecutive_failures = 0
