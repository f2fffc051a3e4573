"""Retrieval-augmented generation: chunking, indexing, search and answers with citations."""

from backends.core.rag.chunking import chunk_spans, chunk_text, effective_overlap
from backends.core.rag.results import (
    DeleteCollectionResult,
    DocumentInput,
    IndexDocumentResult,
    IndexResult,
    QueryOutcome,
    RagStats,
    SearchOutcome,
    SearchResult,
)
from backends.core.rag.service import RagService

__all__ = [
    "DeleteCollectionResult",
    "DocumentInput",
    "IndexDocumentResult",
    "IndexResult",
    "QueryOutcome",
    "RagService",
    "RagStats",
    "SearchOutcome",
    "SearchResult",
    "chunk_spans",
    "chunk_text",
    "effective_overlap",
]
