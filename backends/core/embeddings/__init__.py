"""Embedding providers (local ONNX, OpenAI-compatible), their registry and the service."""

from backends.core.embeddings.base import EmbeddingBatch, EmbeddingProvider, ModelInfo
from backends.core.embeddings.local import LOCAL_MODEL_ID, LocalMiniLMProvider
from backends.core.embeddings.openai_provider import OpenAIEmbeddingProvider
from backends.core.embeddings.registry import (
    EmbeddingRegistry,
    available_models,
    build_embedding_provider,
)
from backends.core.embeddings.service import (
    BatchEmbeddingResult,
    EmbeddingResult,
    EmbeddingService,
    SimilarityResult,
)

__all__ = [
    "LOCAL_MODEL_ID",
    "BatchEmbeddingResult",
    "EmbeddingBatch",
    "EmbeddingProvider",
    "EmbeddingRegistry",
    "EmbeddingResult",
    "EmbeddingService",
    "LocalMiniLMProvider",
    "ModelInfo",
    "OpenAIEmbeddingProvider",
    "SimilarityResult",
    "available_models",
    "build_embedding_provider",
]
