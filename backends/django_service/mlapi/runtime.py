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
from concurrent.futures import Future
from dataclasses import dataclass, field

from django.conf import settings

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
from backends.core.inference.runtime import usable_cores
from backends.core.settings import EngineSettings
from backends.django_service.config.service_settings import DjangoServiceSettings
from backends.django_service.mlapi.pg_reader import PgReader
from backends.django_service.mlapi.redis_clients import ThreadRedis
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
    redis: ThreadRedis | None
    metrics: ProcessMetrics
    reader: PgReader
    _probes: dict[str, Future[dict[str, Check]]] = field(default_factory=dict)
    _probes_lock: threading.Lock = field(default_factory=threading.Lock)

    def readiness(self) -> ReadyResponse:
        """Every dependency checked at once, answered within READY_TIMEOUT_S.

        503 (with the failed checks) when a required one is down or silent. Each probe
        runs on a daemon thread; one still running at the deadline is left to finish,
        and the next /ready waits for it instead of starting another.
        """
        started = time.perf_counter()
        deadline = time.monotonic() + READY_TIMEOUT_S
        probes: dict[str, Callable[[], dict[str, Check]]] = {
            "postgres": self._postgres_check,
            "engine": self._engine_checks,
        }
        if self.redis is not None:
            probes["redis"] = self._redis_check
        futures = {name: self._probe(name, probe) for name, probe in probes.items()}
        results: dict[str, Check] = {}
        for name, future in futures.items():
            try:
                results.update(future.result(timeout=max(0.0, deadline - time.monotonic())))
            except TimeoutError:
                results[name] = timed_out(_ms(started))
            except Exception as exc:
                results[name] = Check(False, _ms(started), f"{type(exc).__name__}: {exc}"[:300])
        return ready_response(results)

    def _probe(self, name: str, probe: Callable[[], dict[str, Check]]) -> Future[dict[str, Check]]:
        with self._probes_lock:
            future = self._probes.get(name)
            if future is None or future.done():
                future = self._probes[name] = Future()
                threading.Thread(
                    target=_run, args=(probe, future), name=f"ready-{name}", daemon=True
                ).start()
            return future

    def _postgres_check(self) -> dict[str, Check]:
        # The probe may outlive one /ready (the next waits for it), not the next either:
        # past two readiness timeouts the reader shuts the stuck connection down.
        timeout_s = 2 * READY_TIMEOUT_S
        return {"postgres": _timed(lambda: self.reader.fetch_value("SELECT 1", (), timeout_s))}

    def _redis_check(self) -> dict[str, Check]:
        assert self.redis is not None
        check = _timed(self.redis.ping)
        return {"redis": Check(check.ok, check.latency_ms, check.detail, REDIS_REQUIRED)}

    def _engine_checks(self) -> dict[str, Check]:
        started = time.perf_counter()
        return {
            name: Check(check.ok, _ms(started), check.detail, check.required)
            for name, check in self.engine.readiness().items()
        }

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stop()
        if self.redis is not None:
            self.redis.close()
        self.reader.close()
        self.engine.close()


def _run(probe: Callable[[], dict[str, Check]], future: Future[dict[str, Check]]) -> None:
    try:
        future.set_result(probe())
    except BaseException as exc:
        future.set_exception(exc)


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
    # A worker respawned while Postgres is away must serve what needs no database: one
    # that fails to boot halts the whole gunicorn server. The main process checked the
    # database before forking (``__main__.schema_problem``).
    engine.start(tolerate_outage=True)
    writer = BackgroundWriter(
        service.database_url,
        service.log_flush_interval_s,
        service.log_batch_size,
        service.db_connect_timeout_s,
        service.log_buffer_rows,
    )
    writer.start()
    client = (
        ThreadRedis.from_url(service.redis_url, service.redis_timeout_s)
        if service.redis_url
        else None
    )
    reader = PgReader(service.database_url, service.db_connect_timeout_s)
    cache = ResponseCache(
        client, reader, writer, service.service_name, service.cache_ttl_s,
        service.memory_cache(), service.cache_retry_s,
    )  # fmt: skip
    flow = RequestFlow(engine, cache_enabled=service.cache_enabled)
    metrics = ProcessMetrics(engine.inference.metrics, writer.counts)
    return Runtime(service, engine, flow, cache, writer, client, metrics, reader)


def _engine_settings(service: DjangoServiceSettings) -> EngineSettings:
    """The engine's settings, its model threads shared out among the gunicorn workers.

    Every worker has its own runtime; each running its models on all the cores would
    oversubscribe them (workers x cores threads), so unless INFERENCE_THREADS says
    otherwise each worker gets its share of the cores; unless INFERENCE_MAX_CALLERS says
    otherwise, model requests may hold ``model_threads`` of its request threads; unless
    INFERENCE_NICE says otherwise, the model threads run at ``MODEL_NICE``.
    """
    engine: EngineSettings = settings.ENGINE
    update: dict[str, int] = {}
    if engine.inference_threads is None:
        update["inference_threads"] = max(1, usable_cores() // service.workers)
    if engine.inference_max_callers is None:
        update["inference_max_callers"] = model_threads(service.threads)
    if engine.inference_nice is None:
        update["inference_nice"] = MODEL_NICE
    return engine.model_copy(update=update)


# The model workers' nice value unless INFERENCE_NICE says otherwise: the request threads
# (and /health) run before a batch when both want a core. Uncached embeddings at 64
# connections, 2 cores, interleaved rounds: /health p99 at 4 connections 112-375 ms at
# nice 0, 55-151 ms at 10, and a larger mean batch (17 vs 10-12): requests reach the
# queue sooner.
MODEL_NICE = 10


def model_threads(threads: int) -> int:
    """How many of a worker's request threads may wait on the models at once.

    A quarter of them, at least 4 and at most 16, stay free: gthread hands a request to a
    thread before reading it, so with every thread waiting on a model /health waited for
    a model answer (p99 760 ms); past the cap a model request is a prompt 503 with
    Retry-After.
    """
    return max(1, threads - max(4, min(16, threads // 4)))


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
