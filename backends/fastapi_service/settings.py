"""Typed settings of the FastAPI backend (env prefix FASTAPI_ for its own knobs)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from backends.core.service_settings import BackendServiceSettings


class FastAPIServiceSettings(BackendServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FASTAPI_")

    service_name: str = "fastapi"
    port: int = Field(default=8001, validation_alias=AliasChoices("PORT", "FASTAPI_PORT"))
    # granian (Rust HTTP, default) or uvicorn (uvloop + httptools). Measured here, one
    # worker, wrk -c64/-c1000: granian /health 10.3k vs 7.5k req/s, p99 at 1,000
    # connections 0.15 s vs 2.8 s; cached POST 2.5k vs 2.1k at 64 connections.
    server: Literal["uvicorn", "granian"] = "granian"
    # FastAPI's native OpenTelemetry (traces, metrics, logs to the globally configured
    # providers). Off by default: the backend exports its own Prometheus metrics, and the
    # check alone reads os.environ three times per request (6% of a cached answer's CPU,
    # py-spy). True hands requests to it again.
    opentelemetry: bool = False
    db_pool_size: int = Field(default=10, ge=1, le=100)
    # Handler threads for operations that block (RAG, analysis, transcription; embeddings
    # on the local model are awaited on the event loop instead). A request waits for one
    # only while those waiting plus the queued texts stay under INFERENCE_QUEUE_SIZE, then
    # 503 + Retry-After; at 4 threads batches capped at 4 texts.
    engine_threads: int = Field(default=64, ge=1, le=256)
