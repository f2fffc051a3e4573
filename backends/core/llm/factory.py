"""Chooses the text-generation provider from settings."""

from __future__ import annotations

import logging

from backends.core.errors import ProviderUnavailable
from backends.core.inference.runtime import InferenceRuntime
from backends.core.llm.anthropic_chat import DEFAULT_ANTHROPIC_MODEL, AnthropicChatProvider
from backends.core.llm.base import LLMProvider
from backends.core.llm.local import (
    INSTALL_HINT,
    LocalLlamaProvider,
    llama_cpp_available,
    packaged_model_path,
)
from backends.core.llm.openai_chat import OpenAIChatProvider
from backends.core.openai_client import has_openai_key, make_openai_client
from backends.core.settings import EngineSettings

logger = logging.getLogger(__name__)

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
NO_LLM_MESSAGE = (
    "text generation needs an LLM, and none is configured: set LLM_PROVIDER=local (the "
    "packaged offline model), LLM_PROVIDER=openai and OPENAI_API_KEY (plus OPENAI_BASE_URL "
    "for another OpenAI-compatible server, e.g. a local one), or LLM_PROVIDER=anthropic and "
    "ANTHROPIC_API_KEY"
)


def build_llm_provider(
    settings: EngineSettings, runtime: InferenceRuntime | None = None
) -> LLMProvider | None:
    """The configured LLM, or None when generation is offline (extractive) or keyless.

    Nothing is loaded here: the local model loads on its first generation, in ``runtime``'s
    queue (the engine's; a runtime of its own when None).
    """
    provider = settings.resolved_llm_provider
    if provider == "openai":
        return _openai(settings) if has_openai_key(settings) else None
    if provider == "anthropic":
        return _anthropic(settings)
    if provider == "local":
        explicit = settings.llm_provider == "local" or settings.local_llm_model_path is not None
        return _local(settings, runtime, explicit=explicit)
    return None


def _openai(settings: EngineSettings) -> OpenAIChatProvider:
    key = settings.openai_api_key
    return OpenAIChatProvider(
        make_openai_client(settings, feature="text generation"),
        default_model=settings.default_llm_model or DEFAULT_OPENAI_MODEL,
        default_max_tokens=settings.default_max_tokens,
        default_temperature=settings.default_temperature,
        secret=key.get_secret_value() if key else None,
    )


def _anthropic(settings: EngineSettings) -> AnthropicChatProvider | None:
    key = settings.anthropic_api_key
    if key is None or not key.get_secret_value().strip():
        return None
    import anthropic  # ~0.5 s to import: only deployments that use it pay for it

    client = anthropic.Anthropic(
        api_key=key.get_secret_value(),
        base_url=settings.anthropic_base_url or None,
        timeout=settings.anthropic_timeout_s,
        max_retries=settings.anthropic_max_retries,
    )
    return AnthropicChatProvider(
        client,
        default_model=settings.default_llm_model or DEFAULT_ANTHROPIC_MODEL,
        default_max_tokens=settings.default_max_tokens,
        secret=key.get_secret_value(),
    )


def _local(
    settings: EngineSettings, runtime: InferenceRuntime | None, *, explicit: bool
) -> LocalLlamaProvider | None:
    """The local model; when it was only the default, its absence means extractive answers."""
    try:
        if not llama_cpp_available():
            raise ProviderUnavailable("llama-cpp-python is not installed: " + INSTALL_HINT)
        path = settings.local_llm_model_path or packaged_model_path()
        if not path.is_file():
            raise ProviderUnavailable(f"LOCAL_LLM_MODEL_PATH={path} is not a file")
    except ProviderUnavailable as exc:
        if explicit:
            raise
        logger.warning("no local LLM (%s): answers are extractive", exc.message)
        return None
    return LocalLlamaProvider(
        path,
        runtime if runtime is not None else InferenceRuntime(settings),
        context_tokens=settings.local_llm_context_tokens,
        threads=settings.local_llm_threads,
        repeat_penalty=settings.local_llm_repeat_penalty,
        default_max_tokens=settings.default_max_tokens,
        default_temperature=settings.default_temperature,
        deadline_s=settings.resolved_local_llm_deadline_s,
    )
