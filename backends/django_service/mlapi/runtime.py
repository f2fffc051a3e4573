"""Per-process resources: the engine, the request flow, Redis, the log writer, the cache.

Each gunicorn worker builds its runtime after fork (``post_worker_init``) and closes it on
exit (``worker_exit``, and ``atexit`` for any other server), so no connection or thread
crosses a fork. Built lazily on first use when no server hook did it (tests, runserver).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from backends.core.api.flow import RequestFlow
from backends.core.api.handlers.health import Check, ready_response
from backends.core.api.metrics_page import ProcessMetrics
from backends.core.engine import Engine
from backends.core.inference.runtime import usable_cores
from backends.core.settings import EngineSettings
from backends.django_service.config.service_settings import DjangoServiceSettings
from backends.django_service.mlapi.request_log import BackgroundWriter
from backends.django_service.mlapi.response_cache import ResponseCache
from shared_schemas.health import ReadyResponse

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: DjangoServiceSettings
    engine: Engine
    flow: RequestFlow
    cache: ResponseCache
    writer: BackgroundWriter | None
    redis: redis.Redis[bytes] | None
    metrics: ProcessMetrics

    def readiness(self) -> ReadyResponse:
        """Check every dependency; 503 (with the failed checks) when a required one is down."""
        checks: dict[str, Check] = {"postgres": _timed(_ping_postgres)}
        if self.redis is not None:
            checks["redis"] = _timed(self.redis.ping)
        started = time.perf_counter()
        for name, check in self.engine.readiness().items():
            checks[name] = Check(check.ok, _ms(started), check.detail, check.required)
        return ready_response(checks)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stop()
        if self.redis is not None:
            self.redis.close()
        self.engine.close()


def _ping_postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _timed(probe: Callable[[], object]) -> Check:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:
        return Check(False, _ms(started), f"{type(exc).__name__}: {exc}"[:300])
    return Check(True, _ms(started), None)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


_lock = threading.Lock()
_current: Runtime | None = None


def build_runtime(service: DjangoServiceSettings) -> Runtime:
    """Open everything the process serves with (the engine connects its stores here)."""
    engine = Engine(_engine_settings(service), service_name=service.service_name)
    engine.start()
    writer = BackgroundWriter(
        service.database_url,
        service.log_flush_interval_s,
        service.log_batch_size,
        service.db_connect_timeout_s,
        service.log_buffer_rows,
    )
    writer.start()
    client = None
    if service.redis_url:
        client = redis.Redis.from_url(
            service.redis_url,
            socket_timeout=service.redis_timeout_s,
            socket_connect_timeout=service.redis_timeout_s,
        )
    cache = ResponseCache(
        client, writer, service.service_name, service.cache_ttl_s, service.memory_cache()
    )
    flow = RequestFlow(engine, cache_enabled=service.cache_enabled)
    metrics = ProcessMetrics(engine.inference.metrics, writer.counts)
    return Runtime(service, engine, flow, cache, writer, client, metrics)


def _engine_settings(service: DjangoServiceSettings) -> EngineSettings:
    """The engine's settings, its model threads shared out among the gunicorn workers.

    Every worker has its own runtime; each running its models on all the cores would
    oversubscribe them (workers x cores threads), so unless INFERENCE_THREADS says
    otherwise each worker gets its share of the cores.
    """
    engine: EngineSettings = settings.ENGINE
    if engine.inference_threads is not None:
        return engine
    share = max(1, usable_cores() // service.workers)
    return engine.model_copy(update={"inference_threads": share})


def start_runtime() -> Runtime:
    """Build this process's runtime once (idempotent, thread-safe)."""
    global _current
    with _lock:
        if _current is None:
            _current = build_runtime(settings.SERVICE)
            atexit.register(stop_runtime)
        return _current


def get_runtime() -> Runtime:
    return _current if _current is not None else start_runtime()


def current_runtime() -> Runtime | None:
    """This process's runtime if it was started (never starts one)."""
    return _current


def stop_runtime() -> None:
    """Flush the request log and close every connection (idempotent)."""
    global _current
    with _lock:
        runtime, _current = _current, None
    if runtime is not None:
        try:
            runtime.close()
        except Exception:
            logger.exception("error while closing the runtime")
