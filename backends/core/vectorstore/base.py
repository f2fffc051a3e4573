"""The vector store interface shared by the pgvector and Qdrant implementations.

Every method is synchronous: the Django backend calls it directly, the FastAPI backend
through its thread pool. Errors are domain exceptions (``backends.core.errors``): an
unknown collection is ``NotFound``, a vector of the wrong dimension ``InvalidInput``, an
unreachable store ``ProviderUnavailable``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from backends.core.errors import InvalidInput, ProviderUnavailable
from shared_schemas.breaker import CircuitBreaker

MetadataValue = str | int | float | bool | None
Metadata = dict[str, MetadataValue]
StoreKind = Literal["pgvector", "qdrant"]
COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


class VectorStoreDown(ProviderUnavailable):
    """The store failed a moment ago: it is skipped (503 at once) until its breaker closes."""

    retry_after_s = 5


def skipped_store(breaker: CircuitBreaker, store: str) -> VectorStoreDown:
    """The 503 a request gets while ``breaker`` is open, with Retry-After = its interval."""
    down = VectorStoreDown(
        f"vector store ({store}) unavailable: it failed less than {breaker.retry_s:g} s ago"
    )
    down.retry_after_s = breaker.retry_after_s
    return down


@dataclass(frozen=True, slots=True)
class Point:
    """One stored chunk: our string id, the document it belongs to, its text and vector."""

    id: str
    document_id: str
    chunk_index: int | None
    text: str
    vector: npt.NDArray[np.float32]
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    """A search hit; ``score`` is the cosine similarity (1 - cosine distance)."""

    id: str
    document_id: str
    chunk_index: int | None
    text: str
    score: float
    metadata: Metadata


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    name: str
    documents: int
    chunks: int
    dimensions: int
    created_at: datetime
    queries: int = 0


@dataclass(frozen=True, slots=True)
class StoreStats:
    collections: int
    documents: int
    chunks: int
    queries: int
    per_collection: list[CollectionInfo]


@runtime_checkable
class VectorStore(Protocol):
    """Collections of chunks with cosine search; a document is the set of its chunks."""

    kind: StoreKind

    def ensure_collection(self, name: str, dimensions: int) -> None:
        """Create the collection if absent; InvalidInput if it exists with other dimensions."""
        ...

    def collection_exists(self, name: str) -> bool: ...

    def collection_dimensions(self, name: str) -> int:
        """The collection's vector size; NotFound when absent."""
        ...

    def upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Insert or overwrite points by id; NotFound when the collection is absent."""
        ...

    def replace_documents(self, collection: str, points: Sequence[Point]) -> int:
        """Make ``points`` the only chunks of the documents they name; return old chunks."""
        ...

    def delete_document(self, collection: str, document_id: str) -> int:
        """Remove every chunk of a document; return how many were removed."""
        ...

    def search(
        self,
        collection: str,
        vector: npt.NDArray[np.float32],
        top_k: int,
        score_threshold: float | None = None,
        filter: Mapping[str, MetadataValue] | None = None,
        *,
        record: bool = False,
    ) -> list[ScoredPoint]:
        """Nearest chunks by cosine, best first; ``filter`` matches every key exactly.
        ``record``: also count the search against the collection (``record_query``)."""
        ...

    def record_query(self, collection: str) -> None:
        """Count one search/query against the collection (for stats)."""
        ...

    def delete_collection(self, name: str) -> int:
        """Drop a collection; return the number of chunks it held. NotFound when absent."""
        ...

    def list_collections(self) -> list[CollectionInfo]: ...

    def stats(self) -> StoreStats: ...

    def ping(self) -> None:
        """Raise ProviderUnavailable when the store cannot serve requests."""
        ...

    def close(self) -> None: ...


def stats_from(collections: list[CollectionInfo]) -> StoreStats:
    """Totals over the per-collection figures."""
    return StoreStats(
        collections=len(collections),
        documents=sum(c.documents for c in collections),
        chunks=sum(c.chunks for c in collections),
        queries=sum(c.queries for c in collections),
        per_collection=collections,
    )


def check_collection_name(name: str) -> None:
    """InvalidInput unless ``name`` follows the contract's collection-name pattern."""
    if not COLLECTION_NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid collection name {name!r}: 1-63 letters, digits, '_' or '-', "
            "starting with a letter or digit",
            details=[
                {
                    "loc": ["body", "collection"],
                    "message": "invalid collection name",
                    "type": "invalid_collection_name",
                }
            ],
        )


def dimension_mismatch(collection: str, expected: int, got: int) -> InvalidInput:
    """The error for a vector that does not fit its collection (e.g. the model changed)."""
    return InvalidInput(
        f"collection '{collection}' holds {expected}-dimensional vectors but got a "
        f"{got}-dimensional one; the embedding model probably changed: use a new collection "
        "or delete this one and re-index",
        details=[
            {
                "loc": ["body", "collection"],
                "message": f"dimension mismatch: expected {expected}, got {got}",
                "type": "dimension_mismatch",
            }
        ],
    )


def check_dimensions(collection: str, expected: int, vector: npt.NDArray[Any]) -> None:
    """InvalidInput unless ``vector`` is one-dimensional with ``expected`` components."""
    if vector.ndim != 1 or int(vector.shape[0]) != expected:
        got = int(vector.shape[-1]) if vector.ndim else 0
        raise dimension_mismatch(collection, expected, got)
