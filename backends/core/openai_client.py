"""Builds the one kind of OpenAI SDK client the engine uses (sync, any compatible base URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.core.errors import ProviderUnavailable
from backends.core.settings import EngineSettings

if TYPE_CHECKING:
    import openai


def has_openai_key(settings: EngineSettings) -> bool:
    """True when a non-blank API key is configured."""
    key = settings.openai_api_key
    return key is not None and bool(key.get_secret_value().strip())


def make_openai_client(settings: EngineSettings, *, feature: str) -> openai.OpenAI:
    """A sync client from settings; raises ProviderUnavailable instead of running keyless."""
    if not has_openai_key(settings):
        raise ProviderUnavailable(
            f"{feature} needs the OpenAI provider, which is not configured: set OPENAI_API_KEY "
            "(and OPENAI_BASE_URL for another OpenAI-compatible server)"
        )
    assert settings.openai_api_key is not None  # narrowed by has_openai_key
    import openai  # ~1 s to import: only deployments that use it pay for it

    return openai.OpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url or None,
        timeout=settings.openai_timeout_s,
        max_retries=settings.openai_max_retries,
    )
