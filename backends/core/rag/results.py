"""Inputs and results of the RAG engine (plain dataclasses named like the API contract)."""

from __future__ import annotations

from dataclasses import dataclass, field

from backends.core.usage import Usage
from backends.core.vectorstore.base import CollectionInfo, Metadata, ScoredPoint, StoreKind

DEFAULT_COLLECTION = "default"
EXTRACTIVE_PROVIDER = "extractive"

# A search result is a stored chunk with its score: {id, document_id, text, score, metadata,
# chunk_index}, exactly the contract's SearchResult.
SearchResult = ScoredPoint


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """A document for /rag/index; ``id`` None makes the engine generate a uuid4."""

    text: str
    id: str | None = None
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IndexResult:
    collection: str
    indexed: int
    ids: list[str]
    model: str
    provider: str


@dataclass(frozen=True, slots=True)
class IndexDocumentResult:
    collection: str
    document_id: str
    chunks: int
    replaced: int
    chunk_size: int
    chunk_overlap: int
    model: str
    provider: str


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    query: str
    collection: str
    results: list[SearchResult]
    total: int
    model: str
    provider: str


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    answer: str
    sources: list[SearchResult]
    model: str
    provider: str
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class DeleteCollectionResult:
    name: str
    chunks_deleted: int
    deleted: bool = True


@dataclass(frozen=True, slots=True)
class RagStats:
    collections: int
    documents: int
    chunks: int
    queries: int
    vector_store: StoreKind
    embedding_model: str
    per_collection: list[CollectionInfo]
