"""Hosted embeddings through the openai SDK, against any OpenAI-compatible base URL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from backends.core.embeddings.base import EmbeddingBatch, ModelInfo, l2_normalise
from backends.core.errors import InvalidInput, UpstreamError
from backends.core.openai_errors import openai_errors, parsed

if TYPE_CHECKING:
    import openai


@dataclass(frozen=True, slots=True)
class OpenAIModelSpec:
    id: str
    dimensions: int
    max_tokens: int
    description: str
    # Only the text-embedding-3 family accepts a `dimensions` request field.
    shortenable: bool


OPENAI_EMBEDDING_MODELS: dict[str, OpenAIModelSpec] = {
    spec.id: spec
    for spec in (
        OpenAIModelSpec("text-embedding-3-small", 1536, 8191, "OpenAI, cheapest", True),
        OpenAIModelSpec("text-embedding-3-large", 3072, 8191, "OpenAI, most accurate", True),
        OpenAIModelSpec("text-embedding-ada-002", 1536, 8191, "OpenAI, legacy", False),
    )
}
DEFAULT_OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
# The API accepts up to 2048 inputs per request; stay well below to bound request size.
_MAX_INPUTS_PER_REQUEST = 256


class OpenAIEmbeddingProvider:
    """Embeddings from an OpenAI-compatible server; build it via the registry (needs a key)."""

    provider = "openai"

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        spec: OpenAIModelSpec,
        dimensions: int | None = None,
        secret: str | None = None,
    ) -> None:
        """``dimensions`` shortens a text-embedding-3 model; for other models it declares theirs."""
        self._client = client
        self._spec = spec
        self._secret = secret
        self.model = spec.id
        self.max_tokens = spec.max_tokens
        self.dimensions = dimensions or spec.dimensions
        # Send `dimensions` only where the API knows it and it changes something.
        self._request_dimensions = (
            dimensions
            if spec.shortenable and dimensions and dimensions != spec.dimensions
            else None
        )

    def describe(self) -> ModelInfo:
        return ModelInfo(
            id=self.model,
            provider=self.provider,
            dimensions=self.dimensions,
            max_tokens=self.max_tokens,
            description=self._spec.description,
        )

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        if not texts:
            raise InvalidInput("nothing to embed: the list of texts is empty")
        parts = []
        tokens = 0
        for start in range(0, len(texts), _MAX_INPUTS_PER_REQUEST):
            chunk = list(texts[start : start + _MAX_INPUTS_PER_REQUEST])
            vectors, used = self._request(chunk)
            parts.append(vectors)
            tokens += used
        return EmbeddingBatch(vectors=l2_normalise(np.concatenate(parts)), prompt_tokens=tokens)

    def _request(self, texts: list[str]) -> tuple[np.ndarray, int]:
        with openai_errors("embeddings", secret=self._secret):
            if self._request_dimensions is None:
                response = self._client.embeddings.create(
                    model=self.model, input=texts, encoding_format="float"
                )
            else:
                response = self._client.embeddings.create(
                    model=self.model,
                    input=texts,
                    encoding_format="float",
                    dimensions=self._request_dimensions,
                )
            response = parsed(response, "embeddings")
        if not isinstance(response.data, list):
            raise UpstreamError("OpenAI-compatible provider (embeddings) returned no data")
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise UpstreamError(
                f"OpenAI-compatible provider (embeddings) returned {len(rows)} vectors "
                f"for {len(texts)} texts"
            )
        vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimensions:
            raise UpstreamError(
                f"OpenAI-compatible provider (embeddings) returned vectors of shape "
                f"{vectors.shape}, expected {self.dimensions} dimensions for {self.model}"
            )
        usage = response.usage
        return vectors, int(usage.prompt_tokens) if usage is not None else 0
