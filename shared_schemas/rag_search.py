"""RAG retrieval: semantic search and question answering over one collection."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from shared_schemas.common import (
    DEFAULT_COLLECTION,
    MODEL_FIELD_DESCRIPTION,
    PROVIDER_DESCRIPTION,
    RESULT_MODEL_DESCRIPTION,
    CollectionName,
    Metadata,
    ModelName,
    ProviderName,
    RequestModel,
    ResponseModel,
    Usage,
    non_blank,
)
from shared_schemas.rag import COLLECTION_DESCRIPTION

MAX_SEARCH_TOP_K = 100
MAX_QUERY_TOP_K = 20

QueryText = Annotated[str, non_blank(10_000)]
ScoreThreshold = Annotated[float, Field(ge=-1.0, le=1.0)]

THRESHOLD_DESCRIPTION = "Drop results whose cosine score is below this (-1..1)."
FILTER_DESCRIPTION = "Keep only results whose metadata equals every key/value given here."

_RESULT: JsonDict = {
    "id": "handbook:3",
    "document_id": "handbook",
    "text": "Refunds are issued within 14 days of the return being received.",
    "score": 0.7412,
    "metadata": {"source": "handbook.pdf", "page": 12},
    "chunk_index": 3,
}


class SearchRequest(RequestModel):
    """Semantic search in one collection."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "How long do refunds take?",
                    "collection": "support",
                    "top_k": 3,
                    "score_threshold": 0.2,
                    "filter": {"source": "handbook.pdf"},
                }
            ]
        }
    )

    query: QueryText = Field(description="Search text (1..10 000 chars, not blank).")
    collection: CollectionName = Field(
        default=DEFAULT_COLLECTION, description=COLLECTION_DESCRIPTION
    )
    top_k: int = Field(default=5, ge=1, le=MAX_SEARCH_TOP_K, description="Most results to return.")
    score_threshold: ScoreThreshold = Field(default=0.0, description=THRESHOLD_DESCRIPTION)
    filter: Metadata | None = Field(default=None, description=FILTER_DESCRIPTION)


class SearchResult(ResponseModel):
    """One retrieved chunk."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RESULT]})

    id: str = Field(description="Chunk id (the document id for whole documents from /index).")
    document_id: str = Field(description="Id of the document the chunk belongs to.")
    text: str = Field(description="Chunk text.")
    score: float = Field(ge=-1.0, le=1.0, description="Cosine similarity to the query.")
    metadata: Metadata = Field(description="The document's metadata.")
    chunk_index: int | None = Field(
        ge=0, description="Position of the chunk in its document; null for /index documents."
    )


class SearchResponse(ResponseModel):
    """Results, best first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "How long do refunds take?",
                    "collection": "support",
                    "results": [_RESULT],
                    "total": 1,
                    "model": "all-MiniLM-L6-v2",
                    "provider": "local",
                }
            ]
        }
    )

    query: str = Field(description="The query, echoed.")
    collection: str = Field(description="Collection searched.")
    results: list[SearchResult] = Field(
        max_length=MAX_SEARCH_TOP_K, description="Results by descending score."
    )
    total: int = Field(ge=0, le=MAX_SEARCH_TOP_K, description="Number of results returned.")
    model: str = Field(description="Embedding model used.")
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)


class QueryRequest(RequestModel):
    """Retrieve from a collection and answer the question from what was found."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"query": "How long do refunds take?", "collection": "support", "top_k": 3},
                {
                    "query": "Summarise the return policy.",
                    "collection": "support",
                    "model": "gpt-4o-mini",
                    "temperature": 0.2,
                    "max_tokens": 300,
                },
            ]
        }
    )

    query: QueryText = Field(description="Question (1..10 000 chars, not blank).")
    collection: CollectionName = Field(
        default=DEFAULT_COLLECTION, description=COLLECTION_DESCRIPTION
    )
    top_k: int = Field(default=5, ge=1, le=MAX_QUERY_TOP_K, description="Sources to retrieve.")
    score_threshold: ScoreThreshold = Field(default=0.0, description=THRESHOLD_DESCRIPTION)
    filter: Metadata | None = Field(default=None, description=FILTER_DESCRIPTION)
    model: ModelName | None = Field(default=None, description=MODEL_FIELD_DESCRIPTION)
    system_prompt: str | None = Field(
        default=None, max_length=4000, description="Replaces the built-in system prompt."
    )
    temperature: float | None = Field(
        default=None, ge=0.0, le=2.0, description="Sampling temperature; null = provider default."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=4000, description="Longest answer in tokens; null = default."
    )


class QueryResponse(ResponseModel):
    """An answer with the sources it was built from."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "answer": "Refunds are issued within 14 days of the return arriving [1].",
                    "sources": [_RESULT],
                    "model": "gpt-4o-mini",
                    "provider": "openai",
                    "usage": {"prompt_tokens": 310, "completion_tokens": 22, "total_tokens": 332},
                }
            ]
        }
    )

    answer: str = Field(description="The answer; extractive when no LLM is configured.")
    sources: list[SearchResult] = Field(
        max_length=MAX_QUERY_TOP_K, description="Retrieved chunks the answer cites, best first."
    )
    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(
        description='The LLM provider that wrote the answer ("local", "openai", "anthropic"), '
        'or "extractive" when no LLM is configured or no source was found.'
    )
    usage: Usage | None = Field(description="Token counts; null for extractive answers.")
