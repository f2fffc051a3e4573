"""Typed gateway settings (pydantic-settings); read when constructed, never at import time."""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import AliasChoices, Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared_schemas.request_meta import check_gateway_secret
from shared_schemas.timeouts import DEFAULT_GROUP_TIMEOUTS, DEFAULT_TIMEOUT_S

DEFAULT_BACKENDS: dict[str, str] = {
    "fastapi": "http://127.0.0.1:8001",
    "django": "http://127.0.0.1:8002",
}


class GatewayConfigError(ValueError):
    """The gateway cannot start with this configuration; the message says what to change."""


_BACKEND_URL_ENV = re.compile(r"^ML_BACKEND_(?P<name>[A-Za-z0-9_]+)_URL$")


class _BackendUrlVarsSource(PydanticBaseSettingsSource):
    """Collects ``ML_BACKEND_<NAME>_URL`` variables into ``env_backends`` ({name: url})."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {
            match["name"].lower(): value
            for key, value in os.environ.items()
            if value and (match := _BACKEND_URL_ENV.match(key.upper()))
        }
        return {"env_backends": found} if found else {}


class GatewaySettings(BaseSettings):
    """Everything the gateway reads from the environment (or `.env`)."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    backend: str = Field(default="fastapi", validation_alias="ML_SERVICE_BACKEND")
    fallback: str | None = Field(default=None, validation_alias="ML_SERVICE_FALLBACK")
    # Extra or overriding backends as JSON: ML_BACKENDS='{"mine": "http://10.0.0.5:9000"}'.
    backends: dict[str, str] = Field(default_factory=dict, validation_alias="ML_BACKENDS")
    env_backends: dict[str, str] = Field(default_factory=dict)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, validation_alias=AliasChoices("PORT", "GATEWAY_PORT"))

    max_body_bytes: int = Field(default=40 * 1024 * 1024, ge=1024)
    connect_timeout_s: float = Field(default=3.0, gt=0)
    # Seconds the backend may stay silent (read timeout) before 504, per route group.
    default_timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0)
    timeouts: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_GROUP_TIMEOUTS))
    pool_size: int = Field(default=512, ge=1)
    # Seconds a client may stay silent while sending its request body before a 408.
    body_timeout_s: float = Field(default=30.0, gt=0)
    # Bodies up to this size are read whole before the backend is contacted: a slow client
    # then holds only its own socket, never a pooled connection or a backend worker (530
    # clients trickling 1 KB bodies held all 512 connections and stalled every request).
    buffer_body_bytes: int = Field(default=1024 * 1024, ge=0)
    # Idle pooled connections are dropped before the backend drops them (uvicorn: 5 s,
    # Django's gunicorn DJANGO_KEEPALIVE_S: 5 s), so a request never lands on a connection
    # the backend is closing (a POST cannot be retried). e2e/test_keepalive.py checks both.
    keepalive_s: float = Field(default=4.0, gt=0)

    api_keys: str = Field(default="", repr=False)
    # Sent to the backends in X-Gateway-Secret with every request: only with it do they
    # believe the attribution headers the gateway sets. Empty = nothing is attributed.
    gateway_secret: str = Field(
        default="", validation_alias="ML_SERVICE_GATEWAY_SECRET", repr=False
    )
    # API keys in Postgres (ml_api_keys, managed with `python -m gateway keys`), next to the
    # static GATEWAY_API_KEYS; they carry user, organisation, scopes and credit budgets.
    database_keys: bool = False
    # The backends' database (Django migrates it): database keys and the shadow results.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL", repr=False)
    key_pool_size: int = Field(default=4, ge=1)
    # A lookup (pool, connect and query) waits this long for Postgres, then answers 503.
    key_lookup_timeout_s: float = Field(default=1.0, gt=0)
    # Lookups (unknown keys too) are cached this long: a revoked key stops working within
    # it. Each replica caches on its own.
    key_cache_ttl_s: float = Field(default=5.0, ge=0)
    key_cache_size: int = Field(default=10_000, ge=1)
    # Seconds between raising the Redis budget counters to the credits Postgres recorded
    # (also done at start-up).
    budget_reconcile_s: float = Field(default=60.0, gt=0)
    budget_redis_timeout_s: float = Field(default=0.25, gt=0)
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    rate_limit_per_minute: int = Field(default=0, ge=0)
    rate_limit_redis_timeout_s: float = Field(default=0.25, gt=0)
    # After Redis failed or timed out (rate limits, budgets), it is skipped this long (both
    # fail open meanwhile), then tried again: a dead Redis costs one timeout per interval.
    redis_retry_s: float = Field(default=5.0, gt=0)

    # Shadow mode (gateway/shadow.py): mirror sampled requests to this backend and compare.
    shadow: str | None = Field(default=None, validation_alias="ML_SERVICE_SHADOW")
    shadow_sample_rate: float = Field(default=1.0, ge=0, le=1)
    # Mirrors in flight at once; a request beyond it is not mirrored (counted as dropped).
    shadow_max_inflight: int = Field(default=16, ge=1)
    # Mirrors held by the gateway for the worker process (gateway/shadow_worker.py): waiting
    # for the next hand-off, for a dead worker's replacement, or for the pipe to take the last
    # batch; beyond it a sampled request is not mirrored (counted as dropped).
    shadow_compare_queue: int = Field(default=64, ge=1)
    shadow_timeout_s: float = Field(default=30.0, gt=0)
    # Answers larger than this are not compared (the primary's is kept only up to it).
    shadow_capture_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Share of mirrored non-deterministic requests also sent twice to the primary (noise).
    shadow_noise_rate: float = Field(default=0.2, ge=0, le=1)
    # At most this many such second requests per operation and gateway process (a small
    # sample measures the primary's variation; each one is work for the primary), sent only
    # while no client request is in flight through this gateway.
    shadow_noise_samples: int = Field(default=20, ge=0)
    shadow_examples_per_field: int = Field(default=5, ge=1)
    shadow_flush_interval_s: float = Field(default=1.0, gt=0)
    shadow_buffer_rows: int = Field(default=10_000, ge=1)
    # `python -m gateway switch-check`: an operation is ready after this many mirrored
    # requests with at least this share of matching answers.
    switch_min_requests: int = Field(default=20, ge=1)
    switch_min_match_rate: float = Field(default=0.99, ge=0, le=1)

    @field_validator("backend", "fallback", "shadow")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else None

    @field_validator("gateway_secret")
    @classmethod
    def _visible_ascii(cls, value: str) -> str:
        return check_gateway_secret(value)

    @field_validator("timeouts")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {group: t for group, t in value.items() if t <= 0}
        if bad:
            raise ValueError(f"timeouts must be > 0 seconds: {bad}")
        # Setting one group keeps the others' defaults (health fast, transcription slow).
        return {**DEFAULT_GROUP_TIMEOUTS, **value}

    @property
    def api_key_list(self) -> list[str]:
        """Accepted API keys (empty: auth is off)."""
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    def timeout_for(self, group: str) -> float:
        return self.timeouts.get(group, self.default_timeout_s)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _BackendUrlVarsSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )
