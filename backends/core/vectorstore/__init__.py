"""Vector stores: one interface (``base.VectorStore``), pgvector and Qdrant implementations."""

from backends.core.vectorstore.base import (
    CollectionInfo,
    Metadata,
    MetadataValue,
    Point,
    ScoredPoint,
    StoreStats,
    VectorStore,
)
from backends.core.vectorstore.factory import build_vector_store

__all__ = [
    "CollectionInfo",
    "Metadata",
    "MetadataValue",
    "Point",
    "ScoredPoint",
    "StoreStats",
    "VectorStore",
    "build_vector_store",
]
