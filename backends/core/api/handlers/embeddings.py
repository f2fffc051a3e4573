"""Embeddings: generate, batch, similarity, models."""

from __future__ import annotations

from collections.abc import Awaitable

from backends.core.api.api_request import ApiRequest, AwaitableHandler, Handler
from backends.core.api.handlers.convert import usage
from backends.core.embeddings.base import ModelInfo
from backends.core.embeddings.service import (
    BatchEmbeddingResult,
    EmbeddingResult,
    SimilarityResult,
)
from backends.core.engine import Engine
from shared_schemas import embeddings as em


def generate(engine: Engine, api_request: ApiRequest) -> em.EmbeddingResponse:
    body = api_request.body_as(em.EmbeddingRequest)
    return _generate_response(engine.embeddings.generate(body.text, model=body.model))


def generate_awaitable(
    engine: Engine, api_request: ApiRequest
) -> Awaitable[em.EmbeddingResponse] | None:
    body = api_request.body_as(em.EmbeddingRequest)
    if not engine.embeddings.awaitable(body.model):
        return None

    async def run() -> em.EmbeddingResponse:
        return _generate_response(await engine.embeddings.generate_async(body.text, body.model))

    return run()


def _generate_response(result: EmbeddingResult) -> em.EmbeddingResponse:
    return em.EmbeddingResponse(
        embedding=result.embedding,
        dimensions=result.dimensions,
        model=result.model,
        provider=result.provider,
        usage=usage(result.usage),
    )


def batch(engine: Engine, api_request: ApiRequest) -> em.BatchEmbeddingResponse:
    body = api_request.body_as(em.BatchEmbeddingRequest)
    return _batch_response(engine.embeddings.batch(body.texts, model=body.model))


def batch_awaitable(
    engine: Engine, api_request: ApiRequest
) -> Awaitable[em.BatchEmbeddingResponse] | None:
    body = api_request.body_as(em.BatchEmbeddingRequest)
    if not engine.embeddings.awaitable(body.model):
        return None

    async def run() -> em.BatchEmbeddingResponse:
        return _batch_response(await engine.embeddings.batch_async(body.texts, body.model))

    return run()


def _batch_response(result: BatchEmbeddingResult) -> em.BatchEmbeddingResponse:
    return em.BatchEmbeddingResponse(
        embeddings=result.embeddings,
        dimensions=result.dimensions,
        count=result.count,
        model=result.model,
        provider=result.provider,
        usage=usage(result.usage),
    )


def similarity(engine: Engine, api_request: ApiRequest) -> em.SimilarityResponse:
    # The engine also reports token usage here; the contract's similarity has no usage field.
    body = api_request.body_as(em.SimilarityRequest)
    return _similarity_response(
        engine.embeddings.similarity(body.text1, body.text2, model=body.model)
    )


def similarity_awaitable(
    engine: Engine, api_request: ApiRequest
) -> Awaitable[em.SimilarityResponse] | None:
    body = api_request.body_as(em.SimilarityRequest)
    if not engine.embeddings.awaitable(body.model):
        return None

    async def run() -> em.SimilarityResponse:
        result = await engine.embeddings.similarity_async(body.text1, body.text2, body.model)
        return _similarity_response(result)

    return run()


def _similarity_response(result: SimilarityResult) -> em.SimilarityResponse:
    return em.SimilarityResponse(
        similarity=result.similarity, model=result.model, provider=result.provider
    )


def _model_info(info: ModelInfo) -> em.EmbeddingModelInfo:
    return em.EmbeddingModelInfo(
        id=info.id,
        provider=info.provider,
        dimensions=info.dimensions,
        max_tokens=info.max_tokens,
        description=info.description,
        default=info.default,
        available=info.available,
    )


def models(engine: Engine, api_request: ApiRequest) -> em.EmbeddingModelsResponse:
    return em.EmbeddingModelsResponse(models=[_model_info(m) for m in engine.embeddings.models()])


HANDLERS: dict[str, Handler] = {
    "embeddings_generate": generate,
    "embeddings_batch": batch,
    "embeddings_similarity": similarity,
    "embeddings_models": models,
}
AWAITABLE_HANDLERS: dict[str, AwaitableHandler] = {
    "embeddings_generate": generate_awaitable,
    "embeddings_batch": batch_awaitable,
    "embeddings_similarity": similarity_awaitable,
}
