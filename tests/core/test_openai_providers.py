"""OpenAI-compatible providers against respx fakes of the HTTP API (never the network)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpcore2
import httpx
import numpy as np
import pytest
import respx

from backends.core.analysis.service import AnalysisService
from backends.core.embeddings.registry import EmbeddingRegistry
from backends.core.embeddings.service import EmbeddingService
from backends.core.errors import (
    MLServiceError,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from backends.core.llm.factory import build_llm_provider
from backends.core.openai_errors import redact
from backends.core.settings import EngineSettings
from tests.core.engine_fixtures import BASE_URL, SECRET_KEY, engine_settings, openai_mock

__all__ = ["openai_mock"]


def keyed_settings(**overrides: Any) -> EngineSettings:
    return engine_settings(
        openai_api_key=SECRET_KEY,
        openai_base_url=BASE_URL,
        openai_max_retries=0,  # one request per call: error tests stay fast and countable
        openai_timeout_s=5.0,
        **overrides,
    )


def embedding_body(vectors: list[list[float]], *, shuffle: bool = False) -> dict[str, Any]:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return {
        "object": "list",
        "data": list(reversed(data)) if shuffle else data,
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }


def chat_body(text: str = "Hello there.") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


def test_embeddings_request_and_response(openai_mock: respx.MockRouter) -> None:
    route = openai_mock.post("/embeddings").mock(
        return_value=httpx.Response(
            200, json=embedding_body([[3.0, 4.0] + [0.0] * 510, [0.0] * 511 + [2.0]], shuffle=True)
        )
    )
    settings = keyed_settings(embedding_provider="openai", embedding_dimensions=512)
    result = EmbeddingService(EmbeddingRegistry(settings)).batch(["first", "second"])

    request = route.calls.last.request
    assert json.loads(request.content) == {
        "model": "text-embedding-3-small",
        "input": ["first", "second"],
        "encoding_format": "float",
        "dimensions": 512,
    }
    assert request.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert (result.provider, result.model, result.dimensions) == (
        "openai",
        "text-embedding-3-small",
        512,
    )
    # rows come back in input order (the fake answered in reverse) and unit length
    assert result.embeddings[0][:2] == pytest.approx([0.6, 0.8])
    assert result.embeddings[1][511] == pytest.approx(1.0)
    assert result.usage.prompt_tokens == 7


def test_embeddings_without_configured_dimensions_send_none(openai_mock: respx.MockRouter) -> None:
    route = openai_mock.post("/embeddings").mock(
        return_value=httpx.Response(200, json=embedding_body([[1.0] * 3072]))
    )
    registry = EmbeddingRegistry(keyed_settings())  # local default; OpenAI on request
    result = EmbeddingService(registry).generate("hi", model="text-embedding-3-large")
    assert json.loads(route.calls.last.request.content) == {
        "model": "text-embedding-3-large",
        "input": ["hi"],
        "encoding_format": "float",
    }
    assert result.dimensions == 3072
    assert np.linalg.norm(result.embedding) == pytest.approx(1.0, abs=1e-5)


def test_embeddings_of_the_wrong_size_are_an_upstream_error(
    openai_mock: respx.MockRouter,
) -> None:
    openai_mock.post("/embeddings").mock(
        return_value=httpx.Response(200, json=embedding_body([[1.0, 0.0]]))
    )
    provider = EmbeddingRegistry(keyed_settings()).resolve("text-embedding-3-small")
    with pytest.raises(UpstreamError, match="1536"):
        provider.embed(["hi"])


def test_chat_request_and_response(openai_mock: respx.MockRouter) -> None:
    route = openai_mock.post("/chat/completions").mock(
        return_value=httpx.Response(200, json=chat_body("Bonjour."))
    )
    llm = build_llm_provider(keyed_settings(llm_provider="openai"))
    completion = AnalysisService(EmbeddingRegistry(keyed_settings()), llm).generate(
        "Say hello in French.", context="The user is learning French.", max_tokens=50
    )
    body = json.loads(route.calls.last.request.content)
    assert body["model"] == "gpt-4o-mini"
    assert body["max_tokens"] == 50 and body["temperature"] == 0.7
    assert body["messages"][0]["role"] == "system"
    assert "The user is learning French." in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": "Say hello in French."}
    assert completion.text == "Bonjour."
    assert (completion.provider, completion.model) == ("openai", "gpt-4o-mini-2024-07-18")
    assert completion.finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 15


def _embed_call() -> Callable[[], object]:
    provider = EmbeddingRegistry(keyed_settings()).resolve("text-embedding-3-small")
    return lambda: provider.embed(["hello"])


def _chat_call() -> Callable[[], object]:
    llm = build_llm_provider(keyed_settings(llm_provider="openai"))
    assert llm is not None
    return lambda: llm.complete("hello")


CALLS = {"/embeddings": _embed_call, "/chat/completions": _chat_call}
KEY_ECHO = {"error": {"message": f"Incorrect API key provided: {SECRET_KEY}.", "type": "auth"}}


@pytest.mark.parametrize("path", list(CALLS))
@pytest.mark.parametrize(
    ("response", "expected", "status"),
    [
        (httpx.Response(401, json=KEY_ECHO), UpstreamError, 502),
        (httpx.Response(403, json=KEY_ECHO), UpstreamError, 502),
        (
            httpx.Response(429, headers={"retry-after": "7"}, json={"error": {"message": "slow"}}),
            RateLimited,
            429,
        ),
        (httpx.Response(500, json={"error": {"message": "boom"}}), UpstreamError, 502),
        (httpx.Response(503, text="unavailable"), UpstreamError, 502),
        (
            httpx.Response(400, json={"error": {"message": f"bad input for key {SECRET_KEY}"}}),
            UpstreamError,
            502,
        ),
        (httpcore2.ReadTimeout("read timed out"), UpstreamTimeout, 504),
        (httpcore2.ConnectError("connection refused"), UpstreamError, 502),
        (httpx.Response(200, text="<html>proxy login</html>"), UpstreamError, 502),
        (
            httpx.Response(200, headers={"content-type": "application/json"}, text="{not json"),
            UpstreamError,
            502,
        ),
        (httpx.Response(200, json={"unexpected": True}), UpstreamError, 502),
        (httpx.Response(200, json=[1, 2]), UpstreamError, 502),
    ],
    ids=[
        *("401", "403", "429", "500", "503", "400", "timeout", "connect"),
        *("200-html", "200-broken-json", "200-wrong-object", "200-json-list"),
    ],
)
def test_errors_are_mapped_without_the_key(
    openai_mock: respx.MockRouter,
    path: str,
    response: httpx.Response | Exception,
    expected: type[MLServiceError],
    status: int,
) -> None:
    route = openai_mock.post(path)
    if isinstance(response, Exception):
        route.mock(side_effect=response)
    else:
        route.mock(return_value=response)
    call = CALLS[path]()
    with pytest.raises(expected) as info:
        call()
    error = info.value
    assert error.status_code == status
    assert route.call_count == 1  # max_retries=0 honoured
    rendered = f"{error} {error.message} {error.details} {error!r}"
    assert SECRET_KEY not in rendered and "SECRETKEY" not in rendered
    # the SDK exception (with its text), if any, is not chained
    assert error.__context__ is None or error.__suppress_context__
    if isinstance(error, RateLimited):
        assert error.retry_after_s == 7
    if isinstance(response, httpx.Response) and response.status_code in (400, 500):
        assert error.details and f"status {response.status_code}" in error.details[0]["message"]


def test_errors_are_logged_without_the_key(
    openai_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    openai_mock.post("/embeddings").mock(return_value=httpx.Response(401, json=KEY_ECHO))
    with caplog.at_level("DEBUG"), pytest.raises(UpstreamError):
        _embed_call()()
    assert caplog.records  # the failure is logged ...
    assert SECRET_KEY not in caplog.text and "SECRETKEY" not in caplog.text  # ... without it


def test_redact_removes_key_shapes() -> None:
    assert redact(f"key {SECRET_KEY} used", SECRET_KEY) == "key *** used"
    assert "sk-ab" not in redact("Incorrect API key provided: sk-ab***********yz.")
    assert "abc.def" not in redact("Authorization: Bearer abc.def")


@pytest.mark.parametrize(
    "echo",
    [
        "Incorrect API key provided: loc4****wxyz.",  # masked: the key's first and last 4
        "Incorrect API key provided: loc4...wxyz.",
        "key 'local-key-12345678' is not valid",  # a run of the key, unmasked
    ],
)
def test_redact_removes_parts_of_a_key_that_is_not_sk_shaped(echo: str) -> None:
    key = "loc4l-key-1234567890-wxyz"
    cleaned = redact(echo, key)
    assert "loc4" not in cleaned and "wxyz" not in cleaned and "12345678" not in cleaned
    assert "***" in cleaned and cleaned.split()[0] == echo.split()[0]  # the rest stays


def test_redact_keeps_words_that_only_share_a_few_letters_with_the_key() -> None:
    assert redact("model gpt-4o-mini not found", "key-gpt-4") == "model gpt-4o-mini not found"
