"""Which embedding models exist, which one is the default, and a request's `model` -> provider."""

from __future__ import annotations

import threading
from dataclasses import replace

from backends.core.embeddings.base import EmbeddingProvider, ModelInfo
from backends.core.embeddings.local import LOCAL_MODEL_ID, LocalMiniLMProvider
from backends.core.embeddings.openai_provider import (
    DEFAULT_OPENAI_EMBEDDING_MODEL,
    OPENAI_EMBEDDING_MODELS,
    OpenAIEmbeddingProvider,
    OpenAIModelSpec,
)
from backends.core.errors import ProviderUnavailable, UnknownModel
from backends.core.inference.runtime import InferenceRuntime
from backends.core.openai_client import has_openai_key, make_openai_client
from backends.core.settings import EngineSettings


def default_model_id(settings: EngineSettings) -> str:
    """The model used when a request names none."""
    if settings.embedding_provider == "openai":
        return settings.embedding_model or DEFAULT_OPENAI_EMBEDDING_MODEL
    return LOCAL_MODEL_ID


def _openai_specs(settings: EngineSettings) -> dict[str, OpenAIModelSpec]:
    """Known OpenAI models plus a custom one configured for an OpenAI-compatible server."""
    specs = dict(OPENAI_EMBEDDING_MODELS)
    custom = settings.embedding_model
    if settings.embedding_provider == "openai" and custom and custom not in specs:
        if settings.embedding_dimensions is None:
            raise ProviderUnavailable(
                f"embedding model {custom!r} is not a known OpenAI model: "
                "set EMBEDDING_DIMENSIONS to its vector size"
            )
        specs[custom] = OpenAIModelSpec(
            custom, settings.embedding_dimensions, 8191, "OpenAI-compatible model", False
        )
    return specs


class EmbeddingRegistry:
    """Owns the provider instances (one local model handle, one client per OpenAI model).

    The local model runs in ``runtime`` (the engine's, one per process); without one the
    registry makes its own, for scripts and tests that need no engine.
    """

    def __init__(self, settings: EngineSettings, runtime: InferenceRuntime | None = None) -> None:
        self.settings = settings
        self.runtime = runtime if runtime is not None else InferenceRuntime(settings)
        if settings.embedding_provider == "local" and settings.embedding_model not in (
            None,
            LOCAL_MODEL_ID,
        ):
            raise ProviderUnavailable(
                f"EMBEDDING_MODEL={settings.embedding_model!r} is not available with "
                f"EMBEDDING_PROVIDER=local (the local model is {LOCAL_MODEL_ID!r})"
            )
        self._openai_specs = _openai_specs(settings)
        self.default_model = default_model_id(settings)
        self._local: LocalMiniLMProvider | None = None
        self._openai: dict[str, OpenAIEmbeddingProvider] = {}
        self._lock = threading.Lock()

    def known_ids(self) -> list[str]:
        return [LOCAL_MODEL_ID, *self._openai_specs]

    @property
    def local(self) -> LocalMiniLMProvider:
        """The local provider (created on first use; its model loads on first embed)."""
        with self._lock:
            if self._local is None:
                self._local = LocalMiniLMProvider(self.runtime)
            return self._local

    def resolve(self, model: str | None) -> EmbeddingProvider:
        """The provider for a request's `model` field (None = the default model)."""
        model_id = self.default_model if model is None else model.strip()
        if model_id == LOCAL_MODEL_ID:
            return self.local
        spec = self._openai_specs.get(model_id)
        if spec is None:
            raise UnknownModel(model_id, self.known_ids())
        return self._openai_provider(spec)

    def _openai_provider(self, spec: OpenAIModelSpec) -> OpenAIEmbeddingProvider:
        with self._lock:
            provider = self._openai.get(spec.id)
            if provider is None:
                settings = self.settings
                client = make_openai_client(settings, feature=f"embedding model {spec.id!r}")
                secret = settings.openai_api_key
                # EMBEDDING_DIMENSIONS belongs to the configured default model (the vector
                # store's size); other models keep their native size.
                dimensions = self._configured_dimensions(spec)
                provider = OpenAIEmbeddingProvider(
                    client,
                    spec=spec,
                    dimensions=dimensions,
                    secret=secret.get_secret_value() if secret else None,
                )
                self._openai[spec.id] = provider
            return provider

    def _configured_dimensions(self, spec: OpenAIModelSpec) -> int | None:
        if spec.id == self.default_model and spec.shortenable:
            return self.settings.embedding_dimensions
        return None

    def models(self) -> list[ModelInfo]:
        """Every model, flagged default/available (OpenAI ones need a key)."""
        keyed = has_openai_key(self.settings)
        infos = [replace(self.local.describe(), available=True)]
        for spec in self._openai_specs.values():
            dims = self._configured_dimensions(spec) or spec.dimensions
            infos.append(
                ModelInfo(
                    id=spec.id,
                    provider="openai",
                    dimensions=dims,
                    max_tokens=spec.max_tokens,
                    description=spec.description,
                    available=keyed,
                )
            )
        return [replace(info, default=info.id == self.default_model) for info in infos]


def build_embedding_provider(settings: EngineSettings) -> EmbeddingProvider:
    """The default provider for these settings (ProviderUnavailable if it needs a missing key)."""
    return EmbeddingRegistry(settings).resolve(None)


def available_models(settings: EngineSettings) -> list[ModelInfo]:
    """The list served by GET /embeddings/models."""
    return EmbeddingRegistry(settings).models()
