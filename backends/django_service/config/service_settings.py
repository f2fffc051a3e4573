"""Typed settings of the Django backend (env prefix DJANGO_ for its own knobs)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from backends.core.service_settings import BackendServiceSettings


class DjangoServiceSettings(BackendServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DJANGO_")

    service_name: str = "django"
    port: int = Field(default=8002, validation_alias=AliasChoices("PORT", "DJANGO_PORT"))
    # Django owns the migrations and needs its database
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/mlapi",
        validation_alias="DATABASE_URL",
    )
    secret_key: SecretStr = SecretStr("dev-only-not-secret")
    debug: bool = False
    workers: int = Field(default=2, ge=1, le=64)
    allowed_hosts: list[str] = ["*"]
    # a sync worker cannot heartbeat while it transcribes; long audio takes minutes of CPU
    worker_timeout_s: int = Field(default=300, ge=5)
    graceful_timeout_s: int = Field(default=20, ge=1)
    db_connect_timeout_s: int = Field(default=5, ge=1)


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
