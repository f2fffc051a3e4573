"""Embedding use cases behind /embeddings: generate, batch, similarity, models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backends.core.embeddings.base import ModelInfo
from backends.core.embeddings.registry import EmbeddingRegistry
from backends.core.errors import InvalidInput
from backends.core.usage import Usage


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    embedding: list[float]
    dimensions: int
    model: str
    provider: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class BatchEmbeddingResult:
    embeddings: list[list[float]]
    dimensions: int
    count: int
    model: str
    provider: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class SimilarityResult:
    """`similarity` mirrors the request: a float for one text2, a list for a list."""

    similarity: float | list[float]
    model: str
    provider: str
    usage: Usage


def _check_texts(texts: Sequence[str], field: str) -> None:
    if not texts:
        raise InvalidInput(f"{field} must contain at least one text")
    for i, text in enumerate(texts):
        if not text.strip():
            raise InvalidInput(
                f"{field} must not contain blank texts",
                details=[
                    {"loc": ["body", field, i], "message": "blank text", "type": "value_error"}
                ],
            )


class EmbeddingService:
    """Synchronous; safe to call from many threads at once."""

    def __init__(self, registry: EmbeddingRegistry) -> None:
        self.registry = registry

    def generate(self, text: str, model: str | None = None) -> EmbeddingResult:
        _check_texts([text], "text")
        provider = self.registry.resolve(model)
        batch = provider.embed([text])
        return EmbeddingResult(
            embedding=batch.vectors[0].tolist(),
            dimensions=provider.dimensions,
            model=provider.model,
            provider=provider.provider,
            usage=Usage(prompt_tokens=batch.prompt_tokens),
        )

    def batch(self, texts: Sequence[str], model: str | None = None) -> BatchEmbeddingResult:
        _check_texts(texts, "texts")
        provider = self.registry.resolve(model)
        batch = provider.embed(texts)
        return BatchEmbeddingResult(
            embeddings=batch.vectors.tolist(),
            dimensions=provider.dimensions,
            count=len(texts),
            model=provider.model,
            provider=provider.provider,
            usage=Usage(prompt_tokens=batch.prompt_tokens),
        )

    def similarity(
        self, text1: str, text2: str | Sequence[str], model: str | None = None
    ) -> SimilarityResult:
        """Cosine similarity of text1 with text2 (or with each text of a list), in [-1, 1]."""
        others = [text2] if isinstance(text2, str) else list(text2)
        _check_texts([text1], "text1")
        _check_texts(others, "text2")
        provider = self.registry.resolve(model)
        # One call for all texts: one model pass and one usage figure.
        batch = provider.embed([text1, *others])
        # Rows are unit vectors, so the dot product is the cosine; clip float error.
        scores = np.clip(batch.vectors[1:] @ batch.vectors[0], -1.0, 1.0)
        values = [round(float(s), 6) for s in scores]
        return SimilarityResult(
            similarity=values[0] if isinstance(text2, str) else values,
            model=provider.model,
            provider=provider.provider,
            usage=Usage(prompt_tokens=batch.prompt_tokens),
        )

    def models(self) -> list[ModelInfo]:
        return self.registry.models()
