"""RAG indexing: whole documents (/index) and one long document in chunks (/index-document)."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from shared_schemas.common import (
    DEFAULT_COLLECTION,
    PROVIDER_DESCRIPTION,
    CollectionName,
    DocumentId,
    Metadata,
    ProviderName,
    RequestModel,
    ResponseModel,
    non_blank,
)

MAX_DOCUMENTS = 100

DocumentText = Annotated[str, non_blank(100_000)]
LongDocumentText = Annotated[str, non_blank(500_000)]

COLLECTION_DESCRIPTION = "Collection name (letters, digits, _ and -; 1..63 chars)."


class RagDocument(RequestModel):
    """One document for /index; stored whole as one chunk."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": "faq-7", "text": "Shipping takes 3-5 days.", "metadata": {"lang": "en"}}
            ]
        }
    )

    id: DocumentId | None = Field(
        default=None,
        description="Document id; a uuid4 is made when absent. Re-using one replaces it.",
    )
    text: DocumentText = Field(description="Document text (1..100 000 chars, not blank).")
    metadata: Metadata = Field(default_factory=dict, description="Metadata stored with it.")


class IndexRequest(RequestModel):
    """Index (upsert by id) up to 100 documents; the collection is created when missing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "collection": "support",
                    "documents": [
                        {"id": "faq-7", "text": "Shipping takes 3-5 days.", "metadata": {}},
                        {"text": "Returns are free within 30 days.", "metadata": {"lang": "en"}},
                    ],
                }
            ]
        }
    )

    documents: list[RagDocument] = Field(
        min_length=1, max_length=MAX_DOCUMENTS, description="Documents to index (1..100)."
    )
    collection: CollectionName = Field(
        default=DEFAULT_COLLECTION, description=COLLECTION_DESCRIPTION
    )


class IndexResponse(ResponseModel):
    """What was indexed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "collection": "support",
                    "indexed": 2,
                    "ids": ["faq-7", "7d9e4f3a-1c2b-4e5f-8a9b-0c1d2e3f4a5b"],
                    "model": "all-MiniLM-L6-v2",
                    "provider": "local",
                }
            ]
        }
    )

    collection: str = Field(description="Collection written to.")
    indexed: int = Field(ge=0, le=MAX_DOCUMENTS, description="Number of documents stored.")
    ids: list[str] = Field(max_length=MAX_DOCUMENTS, description="Their ids, in request order.")
    model: str = Field(description="Embedding model used.")
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)


class IndexDocumentRequest(RequestModel):
    """Chunk one long document and index the chunks, replacing its previous chunks."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "document_id": "handbook",
                    "text": "Chapter 1. Returns.\n\nRefunds are issued within 14 days...",
                    "collection": "support",
                    "metadata": {"source": "handbook.pdf"},
                    "chunk_size": 1000,
                    "chunk_overlap": 200,
                }
            ]
        }
    )

    document_id: DocumentId = Field(description="Id of the document; chunks are keyed by it.")
    text: LongDocumentText = Field(description="Document text (1..500 000 chars, not blank).")
    collection: CollectionName = Field(
        default=DEFAULT_COLLECTION, description=COLLECTION_DESCRIPTION
    )
    metadata: Metadata = Field(default_factory=dict, description="Metadata copied to every chunk.")
    chunk_size: int = Field(
        default=1000, ge=100, le=10_000, description="Chunk size in characters."
    )
    chunk_overlap: int = Field(
        default=200,
        ge=0,
        le=1000,
        description="Characters shared by neighbouring chunks; clamped to chunk_size // 2.",
    )


class IndexDocumentResponse(ResponseModel):
    """Chunks written for the document and the chunking actually used."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "collection": "support",
                    "document_id": "handbook",
                    "chunks": 42,
                    "replaced": 40,
                    "chunk_size": 1000,
                    "chunk_overlap": 200,
                    "model": "all-MiniLM-L6-v2",
                    "provider": "local",
                }
            ]
        }
    )

    collection: str = Field(description="Collection written to.")
    document_id: str = Field(description="The document's id.")
    chunks: int = Field(ge=0, description="Chunks stored now.")
    replaced: int = Field(ge=0, description="Old chunks of this document that were removed.")
    chunk_size: int = Field(ge=100, le=10_000, description="Chunk size used.")
    chunk_overlap: int = Field(
        ge=0, le=1000, description="Overlap used: min(requested, size // 2)."
    )
    model: str = Field(description="Embedding model used.")
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)
