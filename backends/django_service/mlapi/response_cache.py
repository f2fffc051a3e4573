"""The shared response cache: Redis as the hot layer, ml_service_cache as the record.

Keys and stored bodies are the FastAPI backend's (shared key function, the JSON served),
so a response cached by one backend is served by the other. Redis or Postgres trouble
degrades to a miss, never to an error response. Postgres writes and hit counters go
through the background writer; only a Redis miss costs a Postgres read, waited for
``sql.CACHE_READ_TIMEOUT_S`` at most (``PgReader``). A store that failed is skipped for a
while (``shared_schemas.breaker``): a frozen Redis or Postgres costs one
timeout per interval, not one per request.
"""

from __future__ import annotations

import json
import logging

from backends.core.persistence import sql
from backends.core.persistence.memory_cache import MemoryCache
from backends.core.persistence.records import CacheRow
from backends.django_service.mlapi.pg_reader import PgReader
from backends.django_service.mlapi.redis_clients import ThreadRedis
from backends.django_service.mlapi.request_log import BackgroundWriter
from shared_schemas.breaker import CircuitBreaker

logger = logging.getLogger(__name__)


class ResponseCache:
    def __init__(
        self,
        redis_client: ThreadRedis | None,
        reader: PgReader | None,
        writer: BackgroundWriter | None,
        service_name: str,
        ttl_s: int,
        memory: MemoryCache | None = None,
        retry_s: float = 5.0,
    ) -> None:
        self._redis = redis_client
        self._reader = reader
        self._redis_breaker = CircuitBreaker(retry_s)
        self._pg_breaker = CircuitBreaker(retry_s)
        self._writer = writer
        self._service_name = service_name
        self._ttl_s = ttl_s
        self._memory = memory

    def get(self, key: str) -> bytes | None:
        """The cached JSON body, or None. Hits are counted in ml_service_cache."""
        if self._memory is not None and (remembered := self._memory.get(key)) is not None:
            if self._writer is not None:
                self._writer.record_cache_hit(key)
            return remembered
        if self._redis is not None and self._redis_breaker.allow():
            try:
                cached = self._redis.get(key)
            except Exception:
                self._redis_breaker.failed()
                logger.warning("redis cache read failed", exc_info=True)
                cached = None
            else:
                self._redis_breaker.succeeded()
            if isinstance(cached, bytes):
                if self._writer is not None:
                    self._writer.record_cache_hit(key)
                if self._memory is not None:
                    self._memory.put(key, cached)
                return cached
        if self._reader is None or not self._pg_breaker.allow():
            return None
        try:  # the UPDATE counts the hit; reads waiting at once share one round trip
            data = self._reader.fetch_cache(key, sql.CACHE_READ_TIMEOUT_S)
        except Exception:  # TimeoutError included
            self._pg_breaker.failed()
            logger.warning("postgres cache read failed", exc_info=True)
            return None
        self._pg_breaker.succeeded()
        if data is None:
            return None
        # psycopg loads jsonb as Python values; re-encode compactly, as FastAPI does
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        self._keep(key, body)
        return body

    def put(self, key: str, request_hash: str, endpoint: str, body: bytes) -> None:
        """Redis now (the next identical request hits), the Postgres record in the background."""
        self._keep(key, body)
        row = CacheRow(key, request_hash, endpoint, self._service_name, body, self._ttl_s)
        if self._writer is not None and row.storable:
            self._writer.put_cache(row)

    def _keep(self, key: str, body: bytes) -> None:
        """Keep a body in this process's memory layer and in Redis (each when configured)."""
        if self._memory is not None:
            self._memory.put(key, body)
        if self._redis is None or not self._redis_breaker.allow():
            return
        try:
            self._redis.set(key, body, ex=self._ttl_s)
        except Exception:
            self._redis_breaker.failed()
            logger.warning("redis cache write failed", exc_info=True)
        else:
            self._redis_breaker.succeeded()
