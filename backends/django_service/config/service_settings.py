"""Typed settings of the Django backend (env prefix DJANGO_ for its own knobs)."""

from __future__ import annotations

from functools import cached_property
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
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
    # One worker of many request threads (gunicorn gthread): the requests waiting on a model
    # share its batches and the models are loaded once. Two rounds at 64 connections, load
    # average 6-13 from other jobs (rough), uncached embeddings req/s / RSS:
    #   2 sync workers (batches of 1):   24 and 14 / 640 MB; /health 197 and 166 req/s
    #   2 gthread workers x 32 threads:  41 and 95 / 670-700 MB; /health 1310 and 1579
    #   1 gthread worker x 64 threads:   69 and 55 / 385-392 MB; /health 936 and 1268
    # Two workers were not clearly faster and hold two copies of every model; with keep-
    # alive one of them may accept most connections (a worker with 1 batch of 22 seen).
    # Re-measure on a quiet machine: DJANGO_WORKERS=2 is a setting away.
    workers: int = Field(default=1, ge=1, le=64)
    # Request threads per worker; 1 is gunicorn's sync worker (a batch of one per process).
    # Twice the bench's 64 model connections: a request waits for a free thread before it
    # is even read, so with 64 threads all busy on the model /health waited for a model
    # request to finish (4 probe connections: 13 req/s, p50 377 ms, p99 760 ms; with 128
    # threads 75 req/s, p50 46 ms, p99 519 ms, load average 12-14).
    threads: int = Field(default=128, ge=1, le=256)
    allowed_hosts: list[str] = ["*"]
    # a request may transcribe long audio for minutes of CPU before it answers
    worker_timeout_s: int = Field(default=300, ge=5)
    graceful_timeout_s: int = Field(default=20, ge=1)
    db_connect_timeout_s: int = Field(default=5, ge=1)
    # TEST ONLY, off by default: "<operation_id>:<field>" makes this backend answer that
    # operation with one top-level field changed (numbers +1, text suffixed, booleans
    # flipped), so the shadow report and switch-check can be shown to catch a difference.
    test_perturb: str = Field(default="", validation_alias="ML_SERVICE_TEST_PERTURB")

    @field_validator("test_perturb")
    @classmethod
    def _perturb_spec(cls, value: str) -> str:
        op_id, _, field = value.strip().partition(":")
        if value.strip() and not (op_id and field):
            raise ValueError(f"expected <operation_id>:<field>, got {value!r}")
        return value.strip()

    @cached_property
    def perturbed_field(self) -> tuple[str, str] | None:
        """TEST ONLY: (operation id, field) of ML_SERVICE_TEST_PERTURB, parsed once."""
        op_id, _, field = self.test_perturb.partition(":")
        return (op_id, field) if self.test_perturb else None


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
