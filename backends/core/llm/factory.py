"""Chooses the text-generation provider from settings."""

from __future__ import annotations

from backends.core.llm.base import LLMProvider
from backends.core.llm.openai_chat import OpenAIChatProvider
from backends.core.openai_client import has_openai_key, make_openai_client
from backends.core.settings import EngineSettings

NO_LLM_MESSAGE = (
    "text generation needs an LLM, and none is configured: set LLM_PROVIDER=openai and "
    "OPENAI_API_KEY (plus OPENAI_BASE_URL for another OpenAI-compatible server, e.g. a "
    "local one)"
)


def build_llm_provider(settings: EngineSettings) -> LLMProvider | None:
    """The configured LLM, or None when generation is offline (extractive) or keyless."""
    if settings.llm_provider != "openai" or not has_openai_key(settings):
        return None
    key = settings.openai_api_key
    return OpenAIChatProvider(
        make_openai_client(settings, feature="text generation"),
        default_model=settings.default_llm_model,
        default_max_tokens=settings.default_max_tokens,
        default_temperature=settings.default_temperature,
        secret=key.get_secret_value() if key else None,
    )
