"""Settings every backend service reads; each backend subclasses with its env prefix.

Shared infrastructure comes from unprefixed variables (DATABASE_URL, REDIS_URL); a
backend's own knobs carry its prefix (FASTAPI_..., DJANGO_...), so one `.env` configures
both and they can run side by side.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backends.core.persistence.memory_cache import MemoryCache
from backends.core.persistence.write_policy import DEFAULT_BUFFER_ROWS
from shared_schemas.request_meta import check_gateway_secret

# 35 M base64 chars of audio plus JSON overhead; multipart audio is capped by the engine
DEFAULT_MAX_BODY_BYTES = 36 * 1024 * 1024


class BackendServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    service_name: str
    host: str = "127.0.0.1"
    port: int
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    # seconds a client may stay silent while sending its body (then 408), as at the
    # gateway: a stalled client must not hold a worker (Django's sync workers: one each)
    body_timeout_s: float = Field(default=30.0, gt=0)
    request_logging: bool = True
    log_flush_interval_s: float = Field(default=0.5, gt=0)
    log_batch_size: int = Field(default=500, ge=1)
    # rows kept while Postgres is away; beyond it new rows are dropped (and counted)
    log_buffer_rows: int = Field(default=DEFAULT_BUFFER_ROWS, ge=1)
    # seconds a Redis command may take (connect, read): local ones take ~0.2 ms. A frozen
    # Redis added 10 s per request to FastAPI (no timeout) and 4 s to Django (2 s twice)
    redis_timeout_s: float = Field(default=0.5, gt=0)
    cache_enabled: bool = True
    # seconds a cache store (Redis, the Postgres record) that failed is skipped before it
    # is tried again: a dead one costs one timeout per interval, not one per request
    cache_retry_s: float = Field(default=5.0, ge=0)
    cache_ttl_s: int = Field(default=86_400, ge=1)
    # the per-process layer in front of Redis (backends.core.persistence.memory_cache);
    # 0 turns it off: every cached answer is read from Redis
    cache_memory_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    cache_memory_ttl_s: float = Field(default=300.0, gt=0)
    require_migrations: bool = True
    # The gateway's proof (X-Gateway-Secret); empty = attribution headers are never trusted.
    gateway_secret: str = Field(
        default="", validation_alias="ML_SERVICE_GATEWAY_SECRET", repr=False
    )

    @field_validator("gateway_secret")
    @classmethod
    def _visible_ascii(cls, value: str) -> str:
        return check_gateway_secret(value)

    def memory_cache(self) -> MemoryCache | None:
        """This process's layer in front of Redis, or None when it is turned off."""
        if not self.cache_enabled or self.cache_memory_bytes == 0:
            return None
        return MemoryCache(self.cache_memory_bytes, self.cache_memory_ttl_s)
