"""Long-lived resources owned by the app lifespan: pools, clients, the engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio
import asyncpg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from backends.core.api.flow import RequestFlow
from backends.core.api.handlers.health import (
    READY_TIMEOUT_S,
    REDIS_REQUIRED,
    Check,
    ready_response,
    timed_out,
)
from backends.core.api.metrics_page import ProcessMetrics
from backends.core.engine import Engine
from backends.core.settings import EngineSettings
from backends.fastapi_service.body import BodyDeadlines
from backends.fastapi_service.database import create_pool, ensure_schema
from backends.fastapi_service.request_log import RequestLogWriter
from backends.fastapi_service.response_cache import ResponseCache
from backends.fastapi_service.settings import FastAPIServiceSettings
from shared_schemas.health import ReadyResponse

logger = logging.getLogger(__name__)
Probe = Callable[[], Coroutine[Any, Any, dict[str, Check]]]


@dataclass
class Resources:
    settings: FastAPIServiceSettings
    flow: RequestFlow
    engine: Engine
    cache: ResponseCache
    engine_limiter: anyio.CapacityLimiter
    metrics: ProcessMetrics
    body_deadlines: BodyDeadlines  # settings.body_timeout_s for every body read
    pool: asyncpg.Pool[Any] | None = None
    redis: aioredis.Redis[bytes] | None = None
    writer: RequestLogWriter | None = None

    _probes: dict[str, asyncio.Task[dict[str, Check]]] = field(default_factory=dict)

    def admit_to_thread(self) -> None:
        """Refuse (503 + Retry-After) a request that would wait for an engine thread behind
        a full queue.

        A request waits for a thread only while the requests already waiting for one plus
        the items in the models' queues stay under INFERENCE_QUEUE_SIZE: the threads are
        a queue in front of the runtime's, and neither may hold seconds of work.
        Without it, single texts past the threads waited unbounded (each thread holds one
        text in the queue, so the queue itself never filled).
        """
        limiter = self.engine_limiter
        if limiter.available_tokens >= 1:
            return
        waiting = limiter.statistics().tasks_waiting
        runtime = self.engine.inference
        if waiting + runtime.depth() >= runtime.limits.queue_size:
            raise runtime.refuse(waiting)

    async def readiness(self) -> ReadyResponse:
        """Every dependency checked at once, answered within READY_TIMEOUT_S.

        503 (with the failed checks) when a required one is down or silent. A probe
        still running at the deadline is not cancelled (cancelling an asyncpg query
        waits for the hung server) and the next /ready waits for the same probe
        instead of starting another: a frozen store holds one probe, not one per call.
        """
        started = time.perf_counter()
        probes: dict[str, Probe] = {"engine": self._engine_checks}
        if self.pool is not None:
            probes["postgres"] = self._postgres_check
        if self.redis is not None:
            probes["redis"] = self._redis_check
        tasks = {name: self._probe(name, probe) for name, probe in probes.items()}
        await asyncio.wait(tasks.values(), timeout=READY_TIMEOUT_S)
        results: dict[str, Check] = {}
        for name, task in tasks.items():
            if not task.done():
                results[name] = timed_out(_ms(started))
            elif (exc := task.exception()) is not None:
                results[name] = Check(False, _ms(started), f"{type(exc).__name__}: {exc}"[:300])
            else:
                results.update(task.result())
        return ready_response(results)

    def _probe(self, name: str, probe: Probe) -> asyncio.Task[dict[str, Check]]:
        task = self._probes.get(name)
        if task is None or task.done():
            task = self._probes[name] = asyncio.ensure_future(probe())
            task.add_done_callback(_consume)
        return task

    async def _postgres_check(self) -> dict[str, Check]:
        assert self.pool is not None
        return {"postgres": await _timed(self.pool.execute("SELECT 1"))}

    async def _redis_check(self) -> dict[str, Check]:
        assert self.redis is not None
        check = await _timed(self.redis.ping())
        return {"redis": Check(check.ok, check.latency_ms, check.detail, REDIS_REQUIRED)}

    async def _engine_checks(self) -> dict[str, Check]:
        started = time.perf_counter()
        engine_checks = await anyio.to_thread.run_sync(self.engine.readiness)
        return {
            name: Check(check.ok, _ms(started), check.detail, check.required)
            for name, check in engine_checks.items()
        }


async def _timed(probe: Coroutine[Any, Any, Any]) -> Check:
    started = time.perf_counter()
    try:
        await probe
    except Exception as exc:
        return Check(False, _ms(started), f"{type(exc).__name__}: {exc}"[:300])
    return Check(True, _ms(started), None)


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve a late probe's exception so asyncio does not log it as unhandled."""
    if not task.cancelled():
        task.exception()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


@contextlib.asynccontextmanager
async def open_resources(
    settings: FastAPIServiceSettings, engine_settings: EngineSettings
) -> AsyncIterator[Resources]:
    """Open everything in order, close it in reverse; the request log is flushed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        pool = None
        if settings.database_url:
            pool = await create_pool(settings.database_url, settings.db_pool_size)
            stack.push_async_callback(pool.close)
            if settings.require_migrations:
                await ensure_schema(pool)
        redis = None
        if settings.redis_url:
            redis = aioredis.Redis.from_url(
                settings.redis_url,
                socket_timeout=settings.redis_timeout_s,
                socket_connect_timeout=settings.redis_timeout_s,
                retry=Retry(NoBackoff(), 0),  # a retry waits for the same dead server
            )
        if redis is not None:
            stack.push_async_callback(redis.aclose)  # type: ignore[attr-defined]
        engine = Engine(engine_settings, service_name=settings.service_name)
        stack.callback(engine.close)
        await anyio.to_thread.run_sync(engine.start)
        writer = None
        if pool is not None:  # request rows (when REQUEST_LOGGING) and cache rows
            writer = RequestLogWriter(
                pool,
                settings.log_flush_interval_s,
                settings.log_batch_size,
                settings.log_buffer_rows,
            )
            writer.start()
            stack.push_async_callback(writer.stop)
        cache = ResponseCache(
            pool, redis, writer, settings.service_name, settings.cache_ttl_s,
            settings.memory_cache(), settings.cache_retry_s,
        )  # fmt: skip
        yield Resources(
            settings=settings,
            flow=RequestFlow(engine, cache_enabled=settings.cache_enabled),
            engine=engine,
            cache=cache,
            engine_limiter=anyio.CapacityLimiter(settings.engine_threads),
            metrics=ProcessMetrics(engine.inference.metrics, writer.counts if writer else None),
            body_deadlines=BodyDeadlines(settings.body_timeout_s),
            pool=pool,
            redis=redis,
            writer=writer,
        )
