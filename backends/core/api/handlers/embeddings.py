"""Embeddings: generate, batch, similarity, models."""

from __future__ import annotations

from backends.core.api.api_request import ApiRequest, Handler
from backends.core.api.handlers.convert import usage
from backends.core.embeddings.base import ModelInfo
from backends.core.engine import Engine
from shared_schemas import embeddings as em


def generate(engine: Engine, api_request: ApiRequest) -> em.EmbeddingResponse:
    body = api_request.body_as(em.EmbeddingRequest)
    result = engine.embeddings.generate(body.text, model=body.model)
    return em.EmbeddingResponse(
        embedding=result.embedding,
        dimensions=result.dimensions,
        model=result.model,
        provider=result.provider,
        usage=usage(result.usage),
    )


def batch(engine: Engine, api_request: ApiRequest) -> em.BatchEmbeddingResponse:
    body = api_request.body_as(em.BatchEmbeddingRequest)
    result = engine.embeddings.batch(body.texts, model=body.model)
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
    result = engine.embeddings.similarity(body.text1, body.text2, model=body.model)
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
