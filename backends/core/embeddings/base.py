"""The embedding provider interface and the values it exchanges."""

from __future__ import annotations

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


def l2_normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length (all-zero rows stay zero rather than becoming NaN)."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: Vectors = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return result
