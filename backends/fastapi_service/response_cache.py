"""The shared response cache: Redis as the hot layer, ml_service_cache as the record.

A key is the same in every backend (endpoint + normalised body + model), so a response
cached by one backend is served by the other. Redis or Postgres trouble degrades to a
miss, never to an error response, and a store that failed is skipped for a while (see
``shared_schemas.breaker``): a frozen Redis or Postgres costs one timeout per
interval, not one per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from backends.core.persistence import sql
from backends.core.persistence.memory_cache import MemoryCache
from backends.core.persistence.records import CacheRow
from backends.fastapi_service.request_log import RequestLogWriter
from shared_schemas.breaker import CircuitBreaker

logger = logging.getLogger(__name__)


class ResponseCache:
    def __init__(
        self,
        pool: asyncpg.Pool[Any] | None,
        redis: aioredis.Redis[bytes] | None,
        writer: RequestLogWriter | None,
        service_name: str,
        ttl_s: int,
        memory: MemoryCache | None = None,
        retry_s: float = 5.0,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._writer = writer
        self._service_name = service_name
        self._ttl_s = ttl_s
        self._memory = memory
        self._redis_breaker = CircuitBreaker(retry_s)
        self._pg_breaker = CircuitBreaker(retry_s)
        # Keys that missed Redis and wait for the next Postgres read, with their requests'
        # futures; one read runs at a time (``_read_pending``).
        self._pending: dict[str, list[asyncio.Future[Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        # Keys waiting for the next Redis read, with their requests' futures; one read at
        # a time (``_read_redis_pending``).
        self._redis_reads: dict[str, list[asyncio.Future[bytes | None]]] = {}
        self._redis_reader: asyncio.Task[None] | None = None
        # Bodies waiting for the next Redis write, with their requests' futures; one
        # pipeline is sent at a time (``_write_pending``).
        self._writes: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._writer_task: asyncio.Task[None] | None = None

    async def get(self, key: str) -> bytes | None:
        """The cached JSON body, or None. Hits are counted in ml_service_cache."""
        if self._memory is not None and (remembered := self._memory.get(key)) is not None:
            if self._writer is not None:
                self._writer.record_cache_hit(key)
            return remembered
        if self._redis is not None and self._redis_breaker.allow():
            cached = await self._read_redis(key)
            if cached is not None:
                if self._writer is not None:
                    self._writer.record_cache_hit(key)
                if self._memory is not None:
                    self._memory.put(key, cached)
                return cached
        if self._pool is None or not self._pg_breaker.allow():
            return None
        data = await self._read_record(key)
        if data is None:
            return None
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        await self._keep(key, body)
        return body

    async def _read_redis(self, key: str) -> bytes | None:
        """The key's body in Redis; None for a miss or a failed read.

        Keys asked while a Redis read runs are read together in the next one (MGET), as
        the bodies kept are written (``_keep``): each uncached request's GET on its own
        cost the event loop ~60 us of redis-py, a key of an MGET of 20 ~10. A key that
        finds no read running is read at once (a plain GET).
        """
        waiter: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._redis_reads.setdefault(key, []).append(waiter)
        if self._redis_reader is None:
            self._redis_reader = asyncio.ensure_future(self._read_redis_pending())
        return await waiter

    async def _read_redis_pending(self) -> None:
        """Read the waiting keys from Redis, one command at a time, until none are left; a
        failed read opens the breaker and answers its keys, and those queued behind it, as
        misses."""
        redis = self._redis
        assert redis is not None
        batch: dict[str, list[asyncio.Future[bytes | None]]] = {}
        try:
            while self._redis_reads:
                batch, self._redis_reads = self._redis_reads, {}
                keys = list(batch)
                try:
                    if len(keys) == 1:
                        bodies: list[bytes | None] = [await redis.get(keys[0])]
                    else:
                        bodies = await redis.mget(keys)
                except Exception:
                    self._redis_breaker.failed()
                    logger.warning("redis cache read failed", exc_info=True)
                    # the keys queued meanwhile are misses too: a frozen Redis costs one
                    # timeout, and the breaker keeps new ones away
                    for key, waiters in self._redis_reads.items():
                        batch.setdefault(key, []).extend(waiters)
                    self._redis_reads = {}
                    keys = list(batch)
                    bodies = [None] * len(keys)
                else:
                    self._redis_breaker.succeeded()
                for key, body in zip(keys, bodies, strict=True):
                    for waiter in batch[key]:
                        if not waiter.done():  # given up (cancelled)
                            waiter.set_result(body)
                batch = {}
        finally:
            self._redis_reader = None
            for waiters in (*batch.values(), *self._redis_reads.values()):  # when cancelled
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
            self._redis_reads = {}

    async def _read_record(self, key: str) -> Any:
        """The cached row's data; None for a miss, or when the read failed or took longer
        than CACHE_READ_TIMEOUT_S.

        Requests that miss while a read runs wait for the next one, which reads all their
        keys in one statement (``SELECT_CACHE_MANY``): at 64 connections each uncached
        request had its own round trip, ~9% of the event loop's samples. A request that
        finds no read running starts one at once, so alone it waits for nothing more than
        before. Each request waits at most its own CACHE_READ_TIMEOUT_S, queued included.
        """
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append(waiter)
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read_pending())
        try:
            return await asyncio.wait_for(waiter, sql.CACHE_READ_TIMEOUT_S)
        except TimeoutError:  # the read reports its own failure to the breaker
            return None

    async def _read_pending(self) -> None:
        """Read the waiting keys, one statement at a time, until none are left. A failed
        statement opens the breaker and answers every waiting key as a miss: a frozen
        Postgres costs one timeout, and the requests that queued meanwhile do not each
        try again (the breaker keeps new ones away)."""
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                try:
                    rows = await self._read_records(batch)
                except Exception:  # TimeoutError included
                    self._pg_breaker.failed()
                    logger.warning("postgres cache read failed", exc_info=True)
                    for key, waiters in self._pending.items():
                        batch.setdefault(key, []).extend(waiters)
                    self._pending = {}
                    rows = {}
                else:
                    self._pg_breaker.succeeded()
                for key, waiters in batch.items():
                    data = rows.get(key)
                    for waiter in waiters:
                        if not waiter.done():  # given up (timed out or cancelled)
                            waiter.set_result(data)
        finally:
            self._reader = None
            for waiters in self._pending.values():  # only when cancelled (shutdown)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
            self._pending = {}

    async def _read_records(self, batch: dict[str, list[asyncio.Future[Any]]]) -> dict[str, Any]:
        """The rows' data by key, giving up after CACHE_READ_TIMEOUT_S (TimeoutError).

        Taking a connection, the query and handing the connection back share that one
        deadline. A connection whose read did not end well (timed out, cancelled, failed)
        is terminated, not cancelled: asyncpg's cancel asks the server,
        which a frozen one never answers, and the pool waits for that answer before it
        takes the connection back, up to the 30 s command timeout. Before, each
        abandoned read held its pool connection that long (a pool of N ran dry after N
        reads); terminated, it is back in the pool at once, which opens a new one when
        next needed. (With asyncpg's ``timeout=`` alone the read itself waited in that
        release: > 10 s. Past the deadline asyncpg raises TimeoutError at once.)
        """
        assert self._pool is not None
        keys = sorted(batch)  # rows locked in one order by concurrent readers
        hits = [len(batch[key]) for key in keys]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + sql.CACHE_READ_TIMEOUT_S
        conn = await self._pool.acquire(timeout=sql.CACHE_READ_TIMEOUT_S)
        try:
            rows = await conn.fetch(
                sql.SELECT_CACHE_MANY, keys, hits, timeout=deadline - loop.time()
            )
        except BaseException:
            conn.terminate()
            raise
        finally:  # at once when terminated, else asyncpg's reset query (terminated past it)
            await self._pool.release(conn, timeout=deadline - loop.time())
        return {row[0]: row[1] for row in rows}

    async def put(self, key: str, request_hash: str, endpoint: str, body: bytes) -> None:
        """Redis now (sub-millisecond: the next identical request hits), the Postgres record
        with the request log's next batch (one statement per batch, not one per answer)."""
        await self._keep(key, body)
        row = CacheRow(key, request_hash, endpoint, self._service_name, body, self._ttl_s)
        if self._writer is not None and row.storable:
            self._writer.put_cache(row)

    async def _keep(self, key: str, body: bytes) -> None:
        """Keep a body in this process's memory layer and in Redis (each when configured).

        Returns once Redis has it (the next identical request, on any backend, hits).
        Bodies kept while a Redis write runs go together in the next one, one pipeline
        of SETs: at 64 connections of uncached embeddings a batch's answers all arrive
        at once, and each SET on its own cost the event loop ~75 us of redis-py (a
        pipelined one ~20). A body that finds no write running is sent at once.
        """
        if self._memory is not None:
            self._memory.put(key, body)
        if self._redis is None or not self._redis_breaker.allow():
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writes.append((key, body, done))
        if self._writer_task is None:
            self._writer_task = asyncio.ensure_future(self._write_pending())
        await done

    async def _write_pending(self) -> None:
        """Send the waiting bodies to Redis, one pipeline at a time, until none are left.
        A failed write opens the breaker (the bodies stay in memory and in the Postgres
        record); its waiters go on as if it had worked: the cache is optional."""
        redis = self._redis
        assert redis is not None
        batch: list[tuple[str, bytes, asyncio.Future[None]]] = []
        try:
            while self._writes:
                batch, self._writes = self._writes, []
                try:
                    if len(batch) == 1:  # alone: a plain SET costs less than a pipeline
                        key, body, _ = batch[0]
                        await redis.set(key, body, ex=self._ttl_s)
                    else:
                        async with redis.pipeline(transaction=False) as pipe:
                            for key, body, _ in batch:
                                pipe.set(key, body, ex=self._ttl_s)
                            await pipe.execute()
                except Exception:
                    self._redis_breaker.failed()
                    logger.warning("redis cache write failed", exc_info=True)
                else:
                    self._redis_breaker.succeeded()
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._writer_task = None
            for _, _, done in batch + self._writes:  # only when cancelled (shutdown)
                if not done.done():
                    done.set_result(None)
            self._writes = []
