"""RAG: index, index-document, search, query, collections, delete, stats."""

from __future__ import annotations

from collections.abc import Awaitable

from backends.core.api.api_request import ApiRequest, AwaitableHandler, Handler
from backends.core.api.handlers.convert import search_result, usage
from backends.core.engine import Engine
from backends.core.rag.results import DocumentInput, SearchOutcome
from backends.core.vectorstore.base import CollectionInfo
from shared_schemas import rag, rag_collections, rag_search
from shared_schemas.rag_collections import MAX_COLLECTIONS_LISTED


def index(engine: Engine, api_request: ApiRequest) -> rag.IndexResponse:
    body = api_request.body_as(rag.IndexRequest)
    documents = [
        DocumentInput(text=d.text, id=d.id, metadata=dict(d.metadata)) for d in body.documents
    ]
    result = engine.rag.index(documents, collection=body.collection)
    return rag.IndexResponse(
        collection=result.collection,
        indexed=result.indexed,
        ids=result.ids,
        model=result.model,
        provider=result.provider,
    )


def index_document(engine: Engine, api_request: ApiRequest) -> rag.IndexDocumentResponse:
    body = api_request.body_as(rag.IndexDocumentRequest)
    result = engine.rag.index_document(
        body.document_id,
        body.text,
        collection=body.collection,
        metadata=body.metadata,
        chunk_size=body.chunk_size,
        chunk_overlap=body.chunk_overlap,
    )
    return rag.IndexDocumentResponse(
        collection=result.collection,
        document_id=result.document_id,
        chunks=result.chunks,
        replaced=result.replaced,
        chunk_size=result.chunk_size,
        chunk_overlap=result.chunk_overlap,
        model=result.model,
        provider=result.provider,
    )


def search(engine: Engine, api_request: ApiRequest) -> rag_search.SearchResponse:
    body = api_request.body_as(rag_search.SearchRequest)
    result = engine.rag.search(
        body.query,
        collection=body.collection,
        top_k=body.top_k,
        score_threshold=body.score_threshold,
        filter=body.filter,
    )
    return _search_response(result)


def search_awaitable(
    engine: Engine, api_request: ApiRequest
) -> Awaitable[rag_search.SearchResponse] | None:
    if not engine.rag.awaitable:
        return None
    body = api_request.body_as(rag_search.SearchRequest)

    async def run() -> rag_search.SearchResponse:
        result = await engine.rag.search_async(
            body.query,
            collection=body.collection,
            top_k=body.top_k,
            score_threshold=body.score_threshold,
            filter=body.filter,
        )
        return _search_response(result)

    return run()


def _search_response(result: SearchOutcome) -> rag_search.SearchResponse:
    return rag_search.SearchResponse(
        query=result.query,
        collection=result.collection,
        results=[search_result(hit) for hit in result.results],
        total=result.total,
        model=result.model,
        provider=result.provider,
    )


def query(engine: Engine, api_request: ApiRequest) -> rag_search.QueryResponse:
    body = api_request.body_as(rag_search.QueryRequest)
    result = engine.rag.query(
        body.query,
        collection=body.collection,
        top_k=body.top_k,
        score_threshold=body.score_threshold,
        filter=body.filter,
        model=body.model,
        system_prompt=body.system_prompt,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
    )
    return rag_search.QueryResponse(
        answer=result.answer,
        sources=[search_result(hit) for hit in result.sources],
        model=result.model,
        provider=result.provider,
        usage=usage(result.usage) if result.usage is not None else None,
    )


def _collections(infos: list[CollectionInfo]) -> list[rag_collections.CollectionInfo]:
    """Sorted by name and capped at the contract's list bound (per-collection query counts
    are an engine detail the contract leaves out)."""
    ordered = sorted(infos, key=lambda info: info.name)[:MAX_COLLECTIONS_LISTED]
    return [
        rag_collections.CollectionInfo(
            name=info.name,
            documents=info.documents,
            chunks=info.chunks,
            dimensions=info.dimensions,
            created_at=info.created_at,
        )
        for info in ordered
    ]


def collections(engine: Engine, api_request: ApiRequest) -> rag_collections.CollectionsResponse:
    return rag_collections.CollectionsResponse(
        collections=_collections(engine.rag.list_collections())
    )


def delete_collection(
    engine: Engine, api_request: ApiRequest
) -> rag_collections.DeleteCollectionResponse:
    result = engine.rag.delete_collection(api_request.path_params["name"])
    return rag_collections.DeleteCollectionResponse(
        deleted=True, name=result.name, chunks_deleted=result.chunks_deleted
    )


def stats(engine: Engine, api_request: ApiRequest) -> rag_collections.RagStatsResponse:
    result = engine.rag.stats()
    return rag_collections.RagStatsResponse(
        collections=result.collections,
        documents=result.documents,
        chunks=result.chunks,
        queries=result.queries,
        vector_store=result.vector_store,
        embedding_model=result.embedding_model,
        per_collection=_collections(result.per_collection),
    )


AWAITABLE_HANDLERS: dict[str, AwaitableHandler] = {"rag_search": search_awaitable}

HANDLERS: dict[str, Handler] = {
    "rag_index": index,
    "rag_index_document": index_document,
    "rag_search": search,
    "rag_query": query,
    "rag_collections": collections,
    "rag_delete_collection": delete_collection,
    "rag_stats": stats,
}
