"""Embeddings: one text, a batch, similarity, and the model list."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, JsonValue
from pydantic.config import JsonDict

from shared_schemas.common import (
    MODEL_FIELD_DESCRIPTION,
    PROVIDER_DESCRIPTION,
    RESULT_MODEL_DESCRIPTION,
    ModelName,
    ProviderName,
    RequestModel,
    ResponseModel,
    Text,
    Usage,
)

MAX_BATCH = 100
MAX_DIMENSIONS = 8192

Vector = Annotated[list[float], Field(min_length=1, max_length=MAX_DIMENSIONS)]
Cosine = Annotated[float, Field(ge=-1.0, le=1.0)]

# Shortened vectors keep the examples readable; real ones have `dimensions` entries.
_VEC_A: list[JsonValue] = [0.0412, -0.0173, 0.0861, 0.0025]
_VEC_B: list[JsonValue] = [0.0198, 0.0544, -0.0731, 0.0117]
_LOCAL_MODEL: JsonDict = {
    "id": "all-MiniLM-L6-v2",
    "provider": "local",
    "dimensions": 384,
    "max_tokens": 256,
    "description": "Offline sentence embeddings (int8 ONNX).",
    "default": True,
    "available": True,
}
_USAGE: JsonDict = {"prompt_tokens": 9, "completion_tokens": 0, "total_tokens": 9}


class EmbeddingRequest(RequestModel):
    """Embed one text."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"text": "Vector databases index embeddings for fast search."},
                {"text": "Bonjour tout le monde", "model": "all-MiniLM-L6-v2"},
            ]
        }
    )

    text: Text = Field(description="Text to embed (1..50 000 chars, not blank).")
    model: ModelName | None = Field(default=None, description=MODEL_FIELD_DESCRIPTION)


class BatchEmbeddingRequest(RequestModel):
    """Embed up to 100 texts in one call; the output keeps the input order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"texts": ["first document", "second document"], "model": None}]
        }
    )

    texts: list[Text] = Field(
        min_length=1, max_length=MAX_BATCH, description="Texts to embed (1..100, none blank)."
    )
    model: ModelName | None = Field(default=None, description=MODEL_FIELD_DESCRIPTION)


class SimilarityRequest(RequestModel):
    """Cosine similarity of one text against one text or a list of texts."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"text1": "The cat sat on the mat.", "text2": "A cat is sitting on a rug."},
                {
                    "text1": "refund policy",
                    "text2": ["How do I get my money back?", "Opening hours"],
                },
            ]
        }
    )

    text1: Text = Field(description="Reference text.")
    text2: Text | Annotated[list[Text], Field(min_length=1, max_length=MAX_BATCH)] = Field(
        description="One text, or a list of 1..100 texts compared with text1."
    )
    model: ModelName | None = Field(default=None, description=MODEL_FIELD_DESCRIPTION)


class EmbeddingResponse(ResponseModel):
    """The vector of one text."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "embedding": _VEC_A,
                    "dimensions": 4,
                    "model": "all-MiniLM-L6-v2",
                    "provider": "local",
                    "usage": _USAGE,
                }
            ]
        }
    )

    embedding: Vector = Field(description="The vector (L2-normalised for the local provider).")
    dimensions: int = Field(ge=1, le=MAX_DIMENSIONS, description="Length of the vector.")
    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)
    usage: Usage = Field(description="Token counts.")


class BatchEmbeddingResponse(ResponseModel):
    """Vectors of a batch, one per input text, in input order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "embeddings": [_VEC_A, _VEC_B],
                    "dimensions": 4,
                    "count": 2,
                    "model": "all-MiniLM-L6-v2",
                    "provider": "local",
                    "usage": {"prompt_tokens": 8, "completion_tokens": 0, "total_tokens": 8},
                }
            ]
        }
    )

    embeddings: list[Vector] = Field(
        min_length=1, max_length=MAX_BATCH, description="One vector per input text."
    )
    dimensions: int = Field(ge=1, le=MAX_DIMENSIONS, description="Length of each vector.")
    count: int = Field(ge=1, le=MAX_BATCH, description="Number of vectors (= number of texts).")
    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)
    usage: Usage = Field(description="Token counts over the whole batch.")


class SimilarityResponse(ResponseModel):
    """Cosine similarity; a list when text2 was a list (same order)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"similarity": 0.8123, "model": "all-MiniLM-L6-v2", "provider": "local"},
                {"similarity": [0.6412, 0.0531], "model": "all-MiniLM-L6-v2", "provider": "local"},
            ]
        }
    )

    similarity: Cosine | Annotated[list[Cosine], Field(min_length=1, max_length=MAX_BATCH)] = Field(
        description="Cosine similarity in [-1, 1] (clamped); mirrors the shape of text2."
    )
    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)


class EmbeddingModelInfo(ResponseModel):
    """One embedding model a provider offers."""

    model_config = ConfigDict(json_schema_extra={"examples": [_LOCAL_MODEL]})

    id: str = Field(description="Model id to pass as `model`.")
    provider: ProviderName = Field(description="Provider serving the model.")
    dimensions: int = Field(ge=1, le=MAX_DIMENSIONS, description="Vector length.")
    max_tokens: int = Field(ge=1, description="Longest input in tokens; longer input is cut.")
    description: str = Field(description="What the model is good for.")
    default: bool = Field(description="Used when a request names no model.")
    available: bool = Field(description="Whether its provider is configured right now.")


class EmbeddingModelsResponse(ResponseModel):
    """Embedding models known to this service."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "models": [
                        _LOCAL_MODEL,
                        {
                            "id": "text-embedding-3-small",
                            "provider": "openai",
                            "dimensions": 1536,
                            "max_tokens": 8191,
                            "description": "Hosted, cheapest OpenAI embedding model.",
                            "default": False,
                            "available": False,
                        },
                    ]
                }
            ]
        }
    )

    models: list[EmbeddingModelInfo] = Field(max_length=100, description="Known models.")
