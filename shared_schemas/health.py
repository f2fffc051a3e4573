"""Process health (/health, /ready, /live) and per-component health of the API groups."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from shared_schemas.common import ProviderName, ResponseModel

_TS = "2026-11-24T10:15:30.123456Z"


class HealthResponse(ResponseModel):
    """Liveness with version and the name of the backend that answered."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "service": "ml-api",
                    "version": "1.0.0",
                    "backend": "fastapi",
                    "timestamp": _TS,
                }
            ]
        }
    )

    status: Literal["ok"] = Field(description='Always "ok" when the process answers.')
    service: str = Field(description="Service name.")
    version: str = Field(description="Contract version the service implements.")
    backend: str = Field(description='Backend implementation, e.g. "fastapi" or "django".')
    timestamp: datetime = Field(description="Server time (UTC, ISO 8601).")


class CheckResult(ResponseModel):
    """Outcome of one readiness check."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ok": True, "latency_ms": 1.7, "detail": None}]}
    )

    ok: bool = Field(description="Whether the dependency is usable.")
    latency_ms: float = Field(ge=0, description="Time the check took, in milliseconds.")
    detail: str | None = Field(default=None, description="Why the check failed, or extra facts.")


class ReadyResponse(ResponseModel):
    """Readiness: every dependency checked. Not ready answers 503 with the error shape."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ready": True,
                    "status": "degraded",
                    "checks": {
                        "postgres": {"ok": True, "latency_ms": 1.2, "detail": None},
                        "redis": {"ok": True, "latency_ms": 0.4, "detail": None},
                        "vector_store": {"ok": True, "latency_ms": 2.9, "detail": "pgvector"},
                        "llm": {"ok": False, "latency_ms": 0.0, "detail": "no OPENAI_API_KEY"},
                    },
                }
            ]
        }
    )

    ready: bool = Field(description="True: the service can take traffic.")
    status: Literal["ok", "degraded"] = Field(
        description='"degraded" when optional components (e.g. a hosted LLM) are missing.'
    )
    checks: dict[str, CheckResult] = Field(
        max_length=32, description="Check name -> result (postgres, redis, vector_store, ...)."
    )


class LiveResponse(ResponseModel):
    """The process is up; no dependency is checked."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"live": True, "timestamp": _TS}]})

    live: Literal[True] = Field(description="Always true.")
    timestamp: datetime = Field(description="Server time (UTC, ISO 8601).")


class ComponentHealth(ResponseModel):
    """Health of one API group's engine (complexity, transcription)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "component": "transcription",
                    "provider": "local",
                    "model": "whisper-base",
                    "available": True,
                    "detail": None,
                    "timestamp": _TS,
                }
            ]
        }
    )

    status: Literal["ok", "degraded", "unavailable"] = Field(description="Component state.")
    component: str = Field(description='Component name, e.g. "complexity".')
    provider: ProviderName = Field(description="Configured provider.")
    model: str = Field(description="Configured model.")
    available: bool = Field(description="Whether requests to this component can succeed.")
    detail: str | None = Field(default=None, description="Why the component is not ok.")
    timestamp: datetime = Field(description="Server time (UTC, ISO 8601).")
