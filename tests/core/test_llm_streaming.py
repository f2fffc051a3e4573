"""Token streams of the hosted providers, against respx fakes sending server-sent events."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from backends.core.errors import UpstreamError
from backends.core.llm.factory import build_llm_provider
from backends.core.usage import Usage
from tests.core.engine_fixtures import BASE_URL, SECRET_KEY, engine_settings, openai_mock
from tests.core.test_llm_anthropic import ANTHROPIC_URL, anthropic_mock, anthropic_settings

__all__ = ["anthropic_mock", "openai_mock"]


def sse(events: list[Any], *, done: bool = False, named: bool = False) -> bytes:
    lines = []
    for event in events:
        if named:
            lines.append(f"event: {event['type']}\n")
        lines.append(f"data: {json.dumps(event)}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def openai_chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


OPENAI_USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}


@pytest.fixture
def openai_llm():
    llm = build_llm_provider(
        engine_settings(
            llm_provider="openai",
            openai_api_key=SECRET_KEY,
            openai_base_url=BASE_URL,
            openai_max_retries=0,
        )
    )
    assert llm is not None
    return llm


def test_openai_stream_yields_the_deltas(openai_mock: respx.MockRouter, openai_llm) -> None:
    body = sse(
        [
            openai_chunk(""),
            openai_chunk("Bon"),
            openai_chunk("jour."),
            openai_chunk(None, "stop"),
            # the usage chunk include_usage asks for: no choices
            {**openai_chunk(None), "choices": [], "usage": OPENAI_USAGE},
        ],
        done=True,
    )
    route = openai_mock.post("/chat/completions").mock(
        return_value=httpx.Response(
            200, content=body, headers={"content-type": "text/event-stream"}
        )
    )
    stream = openai_llm.stream("Say hello in French.", system="Be brief.", max_tokens=9)
    pieces = list(stream)
    sent = json.loads(route.calls.last.request.content)
    assert sent["stream"] is True and sent["max_tokens"] == 9
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert pieces == ["Bon", "jour."]
    assert stream.completion is not None
    assert (stream.completion.text, stream.completion.finish_reason) == ("Bonjour.", "stop")
    assert stream.completion.usage == Usage(prompt_tokens=12, completion_tokens=3)


def test_openai_stream_refused_upstream_raises_before_any_piece(
    openai_mock: respx.MockRouter, openai_llm
) -> None:
    openai_mock.post("/chat/completions").mock(
        return_value=httpx.Response(400, json={"error": {"message": "bad max_tokens"}})
    )
    with pytest.raises(UpstreamError, match="bad max_tokens"):
        openai_llm.stream("hello")


def anthropic_events(*texts: str) -> list[dict[str, Any]]:
    message: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
        for t in texts
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 3},
        },
        {"type": "message_stop"},
    ]
    return events


def test_anthropic_stream_yields_the_text_deltas(anthropic_mock: respx.MockRouter) -> None:
    body = sse(anthropic_events("Bon", "jour."), named=True)
    route = anthropic_mock.post("/v1/messages").mock(
        return_value=httpx.Response(
            200, content=body, headers={"content-type": "text/event-stream"}
        )
    )
    llm = build_llm_provider(anthropic_settings())
    assert llm is not None
    stream = llm.stream("Say hello in French.")
    assert list(stream) == ["Bon", "jour."]
    assert stream.completion is not None
    assert (stream.completion.text, stream.completion.finish_reason) == ("Bonjour.", "stop")
    assert stream.completion.usage == Usage(prompt_tokens=5, completion_tokens=3)
    assert json.loads(route.calls.last.request.content)["stream"] is True
    assert str(route.calls.last.request.url).startswith(ANTHROPIC_URL)
