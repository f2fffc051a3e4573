"""Typed settings of the Django backend (env prefix DJANGO_ for its own knobs)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    port: int = Field(default=8002, validation_alias="PORT")
    workers: int = Field(default=2, ge=1, le=64)
    allowed_hosts: list[str] = ["*"]


def database_from_url(url: str) -> dict[str, object]:
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
    }
