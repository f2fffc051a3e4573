"""Embedding use cases behind /embeddings: generate, batch, similarity, models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backends.core.embeddings.base import (
    AwaitableEmbeddingProvider,
    EmbeddingBatch,
    EmbeddingProvider,
    ModelInfo,
    embed_async,
)
from backends.core.embeddings.registry import EmbeddingRegistry
from backends.core.errors import InvalidInput, MLServiceError
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
    """Safe to call from many threads at once; each use case also has an ``*_async`` form
    for asyncio callers, which awaits the model without blocking the event loop."""

    def __init__(self, registry: EmbeddingRegistry) -> None:
        self.registry = registry

    def generate(self, text: str, model: str | None = None) -> EmbeddingResult:
        provider = self._generate_provider(text, model)
        return _generate_result(provider, provider.embed([text]))

    async def generate_async(self, text: str, model: str | None = None) -> EmbeddingResult:
        provider = self._generate_provider(text, model)
        return _generate_result(provider, await embed_async(provider, [text]))

    def batch(self, texts: Sequence[str], model: str | None = None) -> BatchEmbeddingResult:
        provider = self._batch_provider(texts, model)
        return _batch_result(provider, provider.embed(texts))

    async def batch_async(
        self, texts: Sequence[str], model: str | None = None
    ) -> BatchEmbeddingResult:
        provider = self._batch_provider(texts, model)
        return _batch_result(provider, await embed_async(provider, texts))

    def similarity(
        self, text1: str, text2: str | Sequence[str], model: str | None = None
    ) -> SimilarityResult:
        """Cosine similarity of text1 with text2 (or with each text of a list), in [-1, 1]."""
        provider, texts = self._similarity_inputs(text1, text2, model)
        return _similarity_result(provider, provider.embed(texts), isinstance(text2, str))

    async def similarity_async(
        self, text1: str, text2: str | Sequence[str], model: str | None = None
    ) -> SimilarityResult:
        provider, texts = self._similarity_inputs(text1, text2, model)
        batch = await embed_async(provider, texts)
        return _similarity_result(provider, batch, isinstance(text2, str))

    def awaitable(self, model: str | None = None) -> bool:
        """Whether ``model``'s ``*_async`` calls await without a thread (the local model's
        queue); False for an unknown model, whose synchronous call raises the error."""
        try:
            return isinstance(self.registry.resolve(model), AwaitableEmbeddingProvider)
        except MLServiceError:
            return False

    def models(self) -> list[ModelInfo]:
        return self.registry.models()

    def _generate_provider(self, text: str, model: str | None) -> EmbeddingProvider:
        _check_texts([text], "text")
        return self.registry.resolve(model)

    def _batch_provider(self, texts: Sequence[str], model: str | None) -> EmbeddingProvider:
        _check_texts(texts, "texts")
        return self.registry.resolve(model)

    def _similarity_inputs(
        self, text1: str, text2: str | Sequence[str], model: str | None
    ) -> tuple[EmbeddingProvider, list[str]]:
        others = [text2] if isinstance(text2, str) else list(text2)
        _check_texts([text1], "text1")
        _check_texts(others, "text2")
        # One call for all texts: one model request and one usage figure.
        return self.registry.resolve(model), [text1, *others]


def _generate_result(provider: EmbeddingProvider, batch: EmbeddingBatch) -> EmbeddingResult:
    return EmbeddingResult(
        embedding=batch.vectors[0].tolist(),
        dimensions=provider.dimensions,
        model=provider.model,
        provider=provider.provider,
        usage=Usage(prompt_tokens=batch.prompt_tokens),
    )


def _batch_result(provider: EmbeddingProvider, batch: EmbeddingBatch) -> BatchEmbeddingResult:
    return BatchEmbeddingResult(
        embeddings=batch.vectors.tolist(),
        dimensions=provider.dimensions,
        count=len(batch.vectors),
        model=provider.model,
        provider=provider.provider,
        usage=Usage(prompt_tokens=batch.prompt_tokens),
    )


def _similarity_result(
    provider: EmbeddingProvider, batch: EmbeddingBatch, single: bool
) -> SimilarityResult:
    """``single``: text2 was one text, so the answer is one float rather than a list."""
    # Rows are unit vectors, so the dot product is the cosine; clip float error.
    scores = np.clip(batch.vectors[1:] @ batch.vectors[0], -1.0, 1.0)
    values = [round(float(s), 6) for s in scores]
    return SimilarityResult(
        similarity=values[0] if single else values,
        model=provider.model,
        provider=provider.provider,
        usage=Usage(prompt_tokens=batch.prompt_tokens),
    )
