"""Typed engine settings, read from the environment (and ``.env``) only when built.

Names follow the public peer implementation (OPENAI_API_KEY, EMBEDDING_MODEL,
DEFAULT_LLM_MODEL, ...) so operators of it feel at home. Build with ``EngineSettings()``
inside an app factory, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared_schemas.timeouts import (
    DEFAULT_GROUP_TIMEOUTS,
    DEFAULT_TIMEOUT_S,
    GENERATING_GROUPS,
    generation_deadline,
    generation_timeout,
)


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    # shared infrastructure
    database_url: str | None = None
    redis_url: str | None = None
    # The longest a request waits on one use of a Postgres connection (vector store,
    # calibration history): a frozen server never answers and nothing else times out.
    # Past it: 503 with Retry-After, and the store is skipped for a few seconds.
    store_query_timeout_s: float = Field(default=10.0, gt=0, le=300)

    # hosted OpenAI-compatible provider (any base URL); never called without a key
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_timeout_s: float = Field(default=30.0, gt=0)
    openai_max_retries: int = Field(default=2, ge=0, le=10)

    # embeddings
    embedding_provider: Literal["local", "openai"] = "local"
    embedding_model: str | None = None  # provider default when unset
    embedding_dimensions: int | None = Field(default=None, ge=1, le=8192)

    # inference runtime: per local model, one bounded queue and its workers running batches
    inference_queue_size: int = Field(default=256, ge=1)  # items (texts) waiting; then 503
    # Seconds of work (queued items at the model's measured speed) a new request may find
    # ahead of it in an embedding queue; then 503. Under overload the model slows (the
    # refusals cost CPU too), so a count alone let 256 texts become a 1.6-2 s wait.
    inference_max_queue_wait_s: float | None = Field(default=1.0, gt=0)
    inference_max_batch_size: int = Field(default=32, ge=1, le=1024)
    # Padded tokens per model call (rows x longest row). MiniLM's throughput falls past
    # ~1024 here (128-token texts: 16.8 texts/s at 8 rows, 13.3 at 32 rows = 4096 tokens)
    # while 32 short texts (<= 32 tokens) still fit in one call.
    inference_max_batch_tokens: int = Field(default=1024, ge=1)
    inference_threads: int | None = Field(default=None, ge=1, le=256)  # None: usable cores
    # Embedding batches computed at once, each on INFERENCE_THREADS // workers intra-op
    # threads (the LLM and Whisper keep one). None: one per thread. Uncached embeddings at
    # 64 connections on 2 cores, CPU ms per request, 2 workers x 1 thread over 1 x 2
    # (median of 9 interleaved rounds): FastAPI 0.91x, Django 0.93x; 2 x 2 was worse than 1 x 2.
    inference_workers: int | None = Field(default=None, ge=1, le=64)
    # Threads of this process that may wait on the models at once; the next blocking call
    # is a 503 with Retry-After. None: no cap of its own (the Django backend derives one
    # from its request threads, so model requests never hold every thread).
    inference_max_callers: int | None = Field(default=None, ge=1, le=1024)
    # Nice value of the model worker threads (Linux: per thread; 0 leaves them as they are).
    # Higher lets the web threads run first when both want a core: the model computes in
    # the CPU time they leave, and /health never waits behind a batch. None: 0 unless the
    # backend chooses (the Django backend: 10; see its ``runtime._engine_settings``).
    inference_nice: int | None = Field(default=None, ge=0, le=19)

    # text generation (RAG answers, /analysis/generate); unset = a hosted provider whose key
    # is set (OpenAI first), else the packaged local model, else extractive
    llm_provider: Literal["local", "openai", "anthropic", "extractive"] | None = None
    default_llm_model: str | None = None  # provider default when unset
    default_temperature: float = Field(default=0.7, ge=0, le=2)
    default_max_tokens: int = Field(default=1000, ge=1, le=4000)

    # local generation: llama.cpp on a GGUF file (unset = the packaged SmolLM2-135M-Instruct)
    local_llm_model_path: Path | None = None
    # prompt + answer, in tokens: SmolLM2 was trained on 8k, but the KV cache and the time to
    # read a long prompt grow with it (2048 tokens: ~50 MB, a few seconds of prompt on 2 cores)
    local_llm_context_tokens: int = Field(default=2048, ge=256, le=32768)
    local_llm_threads: int = Field(default=2, ge=1, le=64)
    # >1 penalises tokens of the last 64: at 1.0 SmolLM2 listing the days of the week goes on
    # to "8. Monday" until max_tokens; 1.1 stops after Sunday; 1.3 garbles the list
    local_llm_repeat_penalty: float = Field(default=1.1, ge=1.0, le=2.0)
    # Seconds a local generation may take from the moment it is queued (queue wait counts):
    # then it stops and answers normally with finish_reason "length", as OpenAI does when
    # it stops early, instead of running into the gateway's 504. Unset: 3/4 of the
    # gateway's timeout for the groups that generate (analysis, rag), read from the same
    # GATEWAY_DEFAULT_TIMEOUT_S / GATEWAY_TIMEOUTS; set at or above that timeout, the
    # backend does not start.
    local_llm_deadline_s: float | None = Field(default=None, gt=0)
    # The gateway's own settings (the same variables), read only to derive and check the
    # deadline above: the two cannot silently disagree.
    gateway_default_timeout_s: float = Field(
        default=DEFAULT_TIMEOUT_S, gt=0, validation_alias="GATEWAY_DEFAULT_TIMEOUT_S"
    )
    gateway_timeouts: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_GROUP_TIMEOUTS), validation_alias="GATEWAY_TIMEOUTS"
    )

    # hosted Anthropic provider (Messages API); never called without a key
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_timeout_s: float = Field(default=30.0, gt=0)
    anthropic_max_retries: int = Field(default=2, ge=0, le=10)

    # vector store: pgvector in DATABASE_URL unless QDRANT_URL (server) or QDRANT_PATH (local mode)
    vector_store: Literal["pgvector", "qdrant"] | None = None
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_path: Path | None = None
    # a Qdrant server's HTTP calls give up after this; then it is skipped for 5 s (503 at once)
    qdrant_timeout_s: int = Field(default=5, ge=1, le=300)

    # transcription
    transcription_provider: Literal["local", "openai"] = "local"
    transcription_model: str = "whisper-base"
    transcription_price_per_minute: float = Field(default=0.006, ge=0)
    max_audio_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    # 30 min of audio: ~115 MB of decoded samples and ~5 min of CPU for the local model
    max_audio_seconds: int = Field(default=1800, ge=1)
    # recordings waiting for the local model (it runs one at a time); then 503
    transcription_queue_size: int = Field(default=8, ge=1)
    model_cache_dir: Path = Path(".data/models")

    @model_validator(mode="after")
    def _deadline_below_the_gateway(self) -> EngineSettings:
        limit = generation_timeout(self.gateway_timeouts, self.gateway_default_timeout_s)
        if self.local_llm_deadline_s is not None and self.local_llm_deadline_s >= limit:
            raise ValueError(
                f"LOCAL_LLM_DEADLINE_S={self.local_llm_deadline_s:g} must be below the "
                f"gateway's timeout for {' and '.join(GENERATING_GROUPS)} ({limit:g} s, "
                "GATEWAY_DEFAULT_TIMEOUT_S / GATEWAY_TIMEOUTS), or a generation that uses it "
                "all is a 504; lower it, or leave it empty to derive it"
            )
        return self

    @property
    def resolved_local_llm_deadline_s(self) -> float:
        """LOCAL_LLM_DEADLINE_S if set; else 3/4 of the gateway's timeout for generation."""
        if self.local_llm_deadline_s is not None:
            return self.local_llm_deadline_s
        return generation_deadline(self.gateway_timeouts, self.gateway_default_timeout_s)

    @property
    def resolved_llm_provider(self) -> Literal["local", "openai", "anthropic", "extractive"]:
        """LLM_PROVIDER if set; else OpenAI or Anthropic when its key is set; else local."""
        if self.llm_provider is not None:
            return self.llm_provider
        if _has_key(self.openai_api_key):
            return "openai"
        if _has_key(self.anthropic_api_key):
            return "anthropic"
        return "local"

    @property
    def resolved_vector_store(self) -> Literal["pgvector", "qdrant"]:
        """pgvector unless Qdrant was asked for explicitly or by URL/path."""
        if self.vector_store is not None:
            return self.vector_store
        if self.qdrant_url or self.qdrant_path:
            return "qdrant"
        return "pgvector"


def _has_key(key: SecretStr | None) -> bool:
    return key is not None and bool(key.get_secret_value().strip())
