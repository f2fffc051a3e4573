"""Converters shared by several groups: engine values -> shared contract models."""

from __future__ import annotations

from typing import Literal, Protocol

from backends.core.usage import Usage as EngineUsage
from backends.core.vectorstore.base import ScoredPoint
from shared_schemas.common import Usage
from shared_schemas.health import ComponentHealth
from shared_schemas.rag_search import SearchResult


class EngineComponentHealth(Protocol):
    """Complexity and transcription each define this dataclass; both have these fields."""

    @property
    def status(self) -> Literal["ok", "degraded", "unavailable"]: ...
    @property
    def component(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def available(self) -> bool: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def timestamp(self) -> object: ...


def usage(value: EngineUsage) -> Usage:
    return Usage(
        prompt_tokens=value.prompt_tokens,
        completion_tokens=value.completion_tokens,
        total_tokens=value.total_tokens,
    )


def component_health(value: EngineComponentHealth) -> ComponentHealth:
    return ComponentHealth(
        status=value.status,
        component=value.component,
        provider=value.provider,
        model=value.model,
        available=value.available,
        detail=value.detail,
        timestamp=value.timestamp,
    )


def clamp_cosine(score: float) -> float:
    """Stores compute 1 - cosine distance, which float error can push just past +-1."""
    return max(-1.0, min(1.0, score))


def search_result(point: ScoredPoint) -> SearchResult:
    return SearchResult(
        id=point.id,
        document_id=point.document_id,
        text=point.text,
        score=clamp_cosine(point.score),
        metadata=dict(point.metadata),
        chunk_index=point.chunk_index,
    )
