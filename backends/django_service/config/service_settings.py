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
    # One gthread worker of many request threads: the requests waiting on a model share
    # its batches (mean 28 on 2 onnxruntime threads, against about 12 per worker on one
    # thread each with 2 workers), the models are loaded once, and its batch accept
    # (gthread_worker.py) keeps p99/p50 at 1,000 connections at 1.5-2.3; with several
    # workers that fix is off (it unbalanced them) and the tail is gthread's (up to 15).
    # Quiet machine (load 3), 64 connections, /live req/s (p99) / uncached embeddings
    # req/s / RSS:
    #   2 sync workers (batches of 1):  3983 (28 ms) / 198 / 654 MB
    #   2 gthread workers x 32 threads: 2221 (73 ms) / 369 / 689 MB
    #   1 gthread worker x 128 threads: 1062 (174 ms) / 342 / 398 MB
    # DJANGO_WORKERS=2 is a setting away (a worker respawned during a database outage
    # serves; the store connects later); give it threads for 64 model places per worker,
    # since gunicorn does not share connections evenly (2 x 48 places refused 3136 of
    # 4038 requests of the bench's 64 model connections; 2 x 64: none).
    workers: int = Field(default=1, ge=1, le=64)
    # Request threads per worker; 1 is gunicorn's sync worker (a batch of one per process).
    # A request waits for a free thread before it is even read, so model requests may hold
    # only some of them (INFERENCE_MAX_CALLERS, ``runtime.model_threads``: 112 of 128, then
    # a prompt 503) and /health always finds one.
    threads: int = Field(default=128, ge=1, le=256)
    allowed_hosts: list[str] = ["*"]
    # a request may transcribe long audio for minutes of CPU before it answers
    worker_timeout_s: int = Field(default=300, ge=5)
    graceful_timeout_s: int = Field(default=20, ge=1)
    # Idle keep-alive connections are kept this long: longer than the gateway reuses one
    # (GATEWAY_KEEPALIVE_S, 4 s). gunicorn's 2 s default raced it: a POST sent on a
    # connection closed under it is not repeated, so it failed (e2e/test_keepalive.py).
    keepalive_s: int = Field(default=5, ge=1)
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
