"""Engine fixtures: one real local model per session, respx for hosted OpenAI-compatible APIs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import respx

from backends.core.analysis.service import AnalysisService
from backends.core.embeddings.registry import EmbeddingRegistry
from backends.core.embeddings.service import EmbeddingService
from backends.core.settings import EngineSettings
from tests.core import respx_httpx2  # noqa: F401  (registers the "httpcore2" mocker)

BASE_URL = "https://api.example.test/v1"
SECRET_KEY = "sk-test-SECRETKEY-0123456789abcdef"
# Explicit values win over the environment, so a developer's OPENAI_API_KEY cannot leak in.
_OFFLINE: dict[str, Any] = {
    "openai_api_key": None,
    "openai_base_url": None,
    "embedding_provider": "local",
    "embedding_model": None,
    "embedding_dimensions": None,
    "llm_provider": "extractive",
}


def engine_settings(**overrides: Any) -> EngineSettings:
    """Offline settings (no .env, no environment leaks) with ``overrides`` applied."""
    return EngineSettings(_env_file=None, **{**_OFFLINE, **overrides})  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def registry() -> EmbeddingRegistry:
    return EmbeddingRegistry(engine_settings())


@pytest.fixture(scope="session")
def embedding_service(registry: EmbeddingRegistry) -> EmbeddingService:
    return EmbeddingService(registry)


@pytest.fixture(scope="session")
def analysis_service(registry: EmbeddingRegistry) -> AnalysisService:
    return AnalysisService(registry)


@pytest.fixture
def openai_mock() -> Iterator[respx.MockRouter]:
    with respx.mock(using="httpcore2", base_url=BASE_URL, assert_all_called=False) as router:
        yield router
