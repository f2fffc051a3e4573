"""The Anthropic provider against respx fakes of the Messages API (never the network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpcore2
import httpx
import pytest
import respx

from backends.core.analysis.service import AnalysisService
from backends.core.embeddings.registry import EmbeddingRegistry
from backends.core.errors import MLServiceError, RateLimited, UpstreamError, UpstreamTimeout
from backends.core.llm.anthropic_chat import AnthropicChatProvider
from backends.core.llm.factory import build_llm_provider
from tests.core.engine_fixtures import engine_settings

ANTHROPIC_URL = "https://api.anthropic.example.test"
ANTHROPIC_KEY = "sk-ant-test-SECRETKEY-0123456789abcdef"


def anthropic_settings(**overrides: Any):
    return engine_settings(
        llm_provider="anthropic",
        anthropic_api_key=ANTHROPIC_KEY,
        anthropic_base_url=ANTHROPIC_URL,
        anthropic_max_retries=0,  # one request per call: error tests stay fast and countable
        anthropic_timeout_s=5.0,
        **overrides,
    )


def message_body(text: str = "Bonjour.", stop_reason: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 21, "output_tokens": 4},
    }


@pytest.fixture
def anthropic_mock() -> Iterator[respx.MockRouter]:
    with respx.mock(using="httpcore2", base_url=ANTHROPIC_URL, assert_all_called=False) as router:
        yield router


def provider(**overrides: Any) -> AnthropicChatProvider:
    llm = build_llm_provider(anthropic_settings(**overrides))
    assert isinstance(llm, AnthropicChatProvider)
    return llm


def test_generate_sends_a_messages_request_and_names_the_provider(
    anthropic_mock: respx.MockRouter,
) -> None:
    route = anthropic_mock.post("/v1/messages").mock(
        return_value=httpx.Response(200, json=message_body())
    )
    analysis = AnalysisService(EmbeddingRegistry(engine_settings()), provider())
    completion = analysis.generate(
        "Say hello in French.", context="Be brief.", max_tokens=50, temperature=0.2
    )

    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {ANTHROPIC_KEY}"
    sent = json.loads(request.content)
    assert sent["model"] == "claude-haiku-4-5"
    assert sent["messages"] == [{"role": "user", "content": "Say hello in French."}]
    assert "Be brief." in sent["system"]
    assert sent["max_tokens"] == 50
    assert (completion.text, completion.provider, completion.model) == (
        "Bonjour.",
        "anthropic",
        "claude-haiku-4-5-20251001",
    )
    assert completion.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (21, 4)


def test_max_tokens_stop_is_length_and_a_named_model_is_sent(
    anthropic_mock: respx.MockRouter,
) -> None:
    route = anthropic_mock.post("/v1/messages").mock(
        return_value=httpx.Response(200, json=message_body("Bon", stop_reason="max_tokens"))
    )
    completion = provider().complete("hello", model="claude-sonnet-4-5")
    assert json.loads(route.calls.last.request.content)["model"] == "claude-sonnet-4-5"
    assert completion.finish_reason == "length"


def test_temperature_is_not_sent(anthropic_mock: respx.MockRouter) -> None:
    # the Messages API of anthropic SDK 2.x takes no sampling parameters
    route = anthropic_mock.post("/v1/messages").mock(
        return_value=httpx.Response(200, json=message_body())
    )
    provider().complete("hello", temperature=0.3)
    assert "temperature" not in json.loads(route.calls.last.request.content)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"type": "error", "error": {"type": "api_error", "message": message}}
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("response", "error", "status"),
    [
        (_error(401, f"invalid x-api-key {ANTHROPIC_KEY}"), UpstreamError, 502),
        (_error(429, "slow down", {"retry-after": "7"}), RateLimited, 429),
        (_error(529, "Overloaded"), UpstreamError, 502),
        (_error(400, "max_tokens: too large"), UpstreamError, 502),
    ],
)
def test_upstream_errors_map_to_domain_errors_without_the_key(
    anthropic_mock: respx.MockRouter,
    response: httpx.Response,
    error: type[MLServiceError],
    status: int,
) -> None:
    anthropic_mock.post("/v1/messages").mock(return_value=response)
    with pytest.raises(error) as caught:
        provider().complete("hello")
    assert caught.value.status_code == status
    assert ANTHROPIC_KEY not in caught.value.message
    assert ANTHROPIC_KEY not in json.dumps(caught.value.details)
    assert caught.value.message.startswith("Anthropic provider (messages)")
    if response.status_code == 401:
        assert "ANTHROPIC_API_KEY" in caught.value.message
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after_s == 7
    if response.status_code == 400:
        assert "max_tokens: too large" in caught.value.message


def test_a_timeout_is_504(anthropic_mock: respx.MockRouter) -> None:
    anthropic_mock.post("/v1/messages").mock(side_effect=httpcore2.ReadTimeout("slow"))
    with pytest.raises(UpstreamTimeout) as caught:
        provider().complete("hello")
    assert caught.value.status_code == 504


def test_keyless_anthropic_is_no_provider() -> None:
    assert build_llm_provider(engine_settings(llm_provider="anthropic")) is None


def test_an_anthropic_key_alone_selects_anthropic() -> None:
    settings = engine_settings(
        llm_provider=None, anthropic_api_key=ANTHROPIC_KEY, anthropic_base_url=ANTHROPIC_URL
    )
    assert settings.resolved_llm_provider == "anthropic"
    assert isinstance(build_llm_provider(settings), AnthropicChatProvider)
