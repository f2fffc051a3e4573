"""Long-lived resources owned by the app lifespan: pools, clients, the engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import anyio
import asyncpg
import redis.asyncio as aioredis

from backends.core.api.flow import RequestFlow
from backends.core.api.handlers.health import Check, ready_response
from backends.core.api.metrics_page import ProcessMetrics
from backends.core.engine import Engine
from backends.core.settings import EngineSettings
from backends.fastapi_service.database import create_pool, ensure_schema
from backends.fastapi_service.request_log import RequestLogWriter
from backends.fastapi_service.response_cache import ResponseCache
from backends.fastapi_service.settings import FastAPIServiceSettings
from shared_schemas.health import ReadyResponse

logger = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 3.0


@dataclass
class Resources:
    settings: FastAPIServiceSettings
    flow: RequestFlow
    engine: Engine
    cache: ResponseCache
    engine_limiter: anyio.CapacityLimiter
    metrics: ProcessMetrics
    pool: asyncpg.Pool[Any] | None = None
    redis: aioredis.Redis[bytes] | None = None
    writer: RequestLogWriter | None = None

    async def readiness(self) -> ReadyResponse:
        """Check every dependency; 503 (with the failed checks) when a required one is down."""
        probes: dict[str, Awaitable[Any]] = {}
        if self.pool is not None:
            probes["postgres"] = self.pool.execute("SELECT 1")
        if self.redis is not None:
            probes["redis"] = self.redis.ping()
        results = dict(
            zip(probes, await asyncio.gather(*map(_timed, probes.values())), strict=True)
        )
        started = time.perf_counter()
        engine_checks = await anyio.to_thread.run_sync(self.engine.readiness)
        for name, check in engine_checks.items():
            results[name] = Check(check.ok, _ms(started), check.detail, check.required)
        return ready_response(results)


async def _timed(probe: Awaitable[Any]) -> Check:
    started = time.perf_counter()
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            await probe
    except Exception as exc:
        detail = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        return Check(False, _ms(started), detail[:300])
    return Check(True, _ms(started), None)


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
        redis = aioredis.Redis.from_url(settings.redis_url) if settings.redis_url else None
        if redis is not None:
            stack.push_async_callback(redis.aclose)  # type: ignore[attr-defined]
        engine = Engine(engine_settings, service_name=settings.service_name)
        stack.callback(engine.close)
        await anyio.to_thread.run_sync(engine.start)
        writer = None
        if pool is not None and settings.request_logging:
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
            settings.memory_cache(),
        )  # fmt: skip
        stack.push_async_callback(cache.drain)
        yield Resources(
            settings=settings,
            flow=RequestFlow(engine, cache_enabled=settings.cache_enabled),
            engine=engine,
            cache=cache,
            engine_limiter=anyio.CapacityLimiter(settings.engine_threads),
            metrics=ProcessMetrics(engine.inference.metrics, writer.counts if writer else None),
            pool=pool,
            redis=redis,
            writer=writer,
        )
