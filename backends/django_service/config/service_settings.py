"""Typed settings of the Django backend (env prefix DJANGO_ for its own knobs)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from backends.core.persistence.write_policy import DEFAULT_BUFFER_ROWS


class DjangoServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DJANGO_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/mlapi",
        validation_alias="DATABASE_URL",
    )
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    secret_key: SecretStr = SecretStr("dev-only-not-secret")
    debug: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8002, validation_alias=AliasChoices("PORT", "DJANGO_PORT"))
    workers: int = Field(default=2, ge=1, le=64)
    allowed_hosts: list[str] = ["*"]

    service_name: str = "django"
    # 35 M base64 chars of audio plus JSON overhead; multipart audio is capped by the engine
    max_body_bytes: int = Field(default=36 * 1024 * 1024, ge=1024)
    # a sync worker cannot heartbeat while it transcribes; long audio takes minutes of CPU
    worker_timeout_s: int = Field(default=300, ge=5)
    graceful_timeout_s: int = Field(default=20, ge=1)
    db_connect_timeout_s: int = Field(default=5, ge=1)
    redis_timeout_s: float = Field(default=2.0, gt=0)
    request_logging: bool = True
    log_flush_interval_s: float = Field(default=0.5, gt=0)
    log_batch_size: int = Field(default=500, ge=1)
    # rows kept while Postgres is away; beyond it new rows are dropped (and counted)
    log_buffer_rows: int = Field(default=DEFAULT_BUFFER_ROWS, ge=1)
    cache_enabled: bool = True
    cache_ttl_s: int = Field(default=86_400, ge=1)
    require_migrations: bool = True


def database_from_url(url: str, connect_timeout_s: int = 5) -> dict[str, object]:
    """Django DATABASES entry from a postgresql:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # a database that does not answer must fail a request (or /ready), not hang a worker
        "OPTIONS": {"connect_timeout": connect_timeout_s},
    }
