"""RAG collections: list, delete, and store-wide statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from shared_schemas.common import ResponseModel

MAX_COLLECTIONS_LISTED = 1000

_COLLECTION: JsonDict = {
    "name": "support",
    "documents": 12,
    "chunks": 87,
    "dimensions": 384,
    "created_at": "2026-11-20T08:00:00Z",
}


class CollectionInfo(ResponseModel):
    """One collection with its counts."""

    model_config = ConfigDict(json_schema_extra={"examples": [_COLLECTION]})

    name: str = Field(description="Collection name.")
    documents: int = Field(ge=0, description="Distinct documents stored.")
    chunks: int = Field(ge=0, description="Chunks (vector points) stored.")
    dimensions: int = Field(ge=1, le=8192, description="Vector length of the collection.")
    created_at: datetime = Field(description="When the collection was created (UTC).")


class CollectionsResponse(ResponseModel):
    """Collections in the vector store, by name."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"collections": [_COLLECTION]}]})

    collections: list[CollectionInfo] = Field(
        max_length=MAX_COLLECTIONS_LISTED,
        description="Collections sorted by name in code-point order (first 1000).",
    )


class DeleteCollectionResponse(ResponseModel):
    """The collection and all its chunks are gone."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"deleted": True, "name": "support", "chunks_deleted": 87}]}
    )

    deleted: Literal[True] = Field(description="Always true (a missing collection is a 404).")
    name: str = Field(description="Name of the deleted collection.")
    chunks_deleted: int = Field(ge=0, description="Chunks removed with it.")


class RagStatsResponse(ResponseModel):
    """Totals over every collection."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "collections": 1,
                    "documents": 12,
                    "chunks": 87,
                    "queries": 431,
                    "vector_store": "pgvector",
                    "embedding_model": "all-MiniLM-L6-v2",
                    "per_collection": [_COLLECTION],
                }
            ]
        }
    )

    collections: int = Field(ge=0, description="Number of collections.")
    documents: int = Field(ge=0, description="Documents over all collections.")
    chunks: int = Field(ge=0, description="Chunks over all collections.")
    queries: int = Field(ge=0, description="Searches and queries served (all backends).")
    vector_store: Literal["pgvector", "qdrant"] = Field(description="Vector store in use.")
    embedding_model: str = Field(description="Embedding model used for indexing and search.")
    per_collection: list[CollectionInfo] = Field(
        max_length=MAX_COLLECTIONS_LISTED, description="The same items as /collections."
    )
