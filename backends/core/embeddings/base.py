"""The embedding provider interface and the values it exchanges."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class EmbeddingBatch:
    """Vectors (n, d) float32, each row L2-normalised, plus the tokens the call consumed."""

    vectors: Vectors
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One entry of GET /embeddings/models."""

    id: str
    provider: str
    dimensions: int
    max_tokens: int
    description: str
    default: bool = False
    available: bool = True


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Turns texts into unit vectors; implementations are thread-safe and synchronous."""

    provider: str
    model: str
    dimensions: int
    max_tokens: int

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Embed ``texts`` in order; raises a domain error (backends.core.errors) on failure."""
        ...

    def describe(self) -> ModelInfo:
        """This provider's model as listed by the models endpoint."""
        ...


@runtime_checkable
class AwaitableEmbeddingProvider(EmbeddingProvider, Protocol):
    """A provider with its own non-blocking path (the local model, via the runtime's queue)."""

    async def embed_async(self, texts: Sequence[str]) -> EmbeddingBatch:
        """As ``embed``, awaited without blocking the event loop."""
        ...


async def embed_async(provider: EmbeddingProvider, texts: Sequence[str]) -> EmbeddingBatch:
    """``provider.embed`` for asyncio callers: its own awaitable path, else in a thread."""
    if isinstance(provider, AwaitableEmbeddingProvider):
        return await provider.embed_async(texts)
    return await asyncio.to_thread(provider.embed, texts)


def l2_normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length (all-zero rows stay zero rather than becoming NaN)."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: Vectors = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return result
