"""``stream: true`` on /analysis/generate in the shared request flow: the event stream both
backends send, with a hosted LLM faked at the HTTP layer (respx)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from backends.core.api.api_request import StreamResult
from backends.core.api.flow import Prepared, RequestFlow
from backends.core.engine import Engine
from backends.core.errors import UpstreamError
from backends.core.persistence.log_notes import LogNotes
from shared_schemas.generation import EVENT_STREAM_MEDIA_TYPE, GenerateResponse
from tests.api.examples import request_for
from tests.core.engine_fixtures import BASE_URL, SECRET_KEY, engine_settings
from tests.core.test_llm_streaming import openai_chunk, sse

STREAMED = {"prompt": "Say hello in French.", "max_tokens": 9, "stream": True}


@pytest.fixture
def flow() -> RequestFlow:
    settings = engine_settings(
        openai_api_key=SECRET_KEY,
        openai_base_url=BASE_URL,
        openai_max_retries=0,
        llm_provider="openai",
    )
    return RequestFlow(Engine(settings, "api-tests"), cache_enabled=True)


def parse(body: bytes) -> list[tuple[str, Any]]:
    events = []
    for block in body.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def answer(
    openai_mock: respx.MockRouter, flow: RequestFlow, upstream: bytes
) -> tuple[list[tuple[str, Any]], LogNotes]:
    """The events sent for ``upstream`` (the provider's SSE body), and the log's notes."""
    openai_mock.post("/chat/completions").mock(
        return_value=httpx.Response(
            200, content=upstream, headers={"content-type": "text/event-stream"}
        )
    )
    api_request = request_for("analysis_generate", STREAMED)
    notes = LogNotes()
    result = flow.run(api_request)
    assert isinstance(result, StreamResult)
    finished = flow.finish(Prepared(api_request), result, notes)
    assert finished.media_type == EVENT_STREAM_MEDIA_TYPE and finished.cache_entry is None
    assert finished.stream is not None
    return parse(b"".join(finished.stream.encoded("rid-1"))), notes


def test_tokens_then_the_whole_response(openai_mock: respx.MockRouter, flow: RequestFlow) -> None:
    upstream = sse(
        [
            openai_chunk("Bon"),
            openai_chunk("jour."),
            openai_chunk(None, "stop"),
            {**openai_chunk(None), "choices": [], "usage": {"prompt_tokens": 7,
                                                            "completion_tokens": 2,
                                                            "total_tokens": 9}},
        ],
        done=True,
    )  # fmt: skip
    events, notes = answer(openai_mock, flow, upstream)
    assert events[:2] == [("token", {"text": "Bon"}), ("token", {"text": "jour."})]
    name, done = events[2]
    assert name == "done" and len(events) == 3
    response = GenerateResponse.model_validate(done)
    assert (response.text, response.provider) == ("Bonjour.", "openai")
    assert response.finish_reason == "stop"
    assert response.usage.total_tokens == 9
    assert isinstance(notes.response, GenerateResponse) and notes.response.text == "Bonjour."
    assert notes.error is None


def test_an_error_after_the_first_token_is_the_last_event(
    openai_mock: respx.MockRouter, flow: RequestFlow
) -> None:
    # OpenAI reports a failure inside a started stream as an error object in a data line
    upstream = sse([openai_chunk("Bon"), {"error": {"message": "overloaded mid-answer"}}])
    events, notes = answer(openai_mock, flow, upstream)
    assert events[0] == ("token", {"text": "Bon"})
    name, error = events[1]
    assert name == "error" and len(events) == 2
    assert error["request_id"] == "rid-1"
    assert error["error"]["code"] == "bad_gateway"
    assert "chat completions" in error["error"]["message"]
    assert notes.error == error["error"]["message"]
    assert notes.response == {"media_type": EVENT_STREAM_MEDIA_TYPE, "events": 1}


def test_an_error_before_the_first_token_is_raised(
    openai_mock: respx.MockRouter, flow: RequestFlow
) -> None:
    openai_mock.post("/chat/completions").mock(
        return_value=httpx.Response(400, json={"error": {"message": "bad max_tokens"}})
    )
    with pytest.raises(UpstreamError, match="bad max_tokens"):
        flow.run(request_for("analysis_generate", STREAMED))
