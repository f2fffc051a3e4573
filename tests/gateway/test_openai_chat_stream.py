"""The translation of the contract's generation events into OpenAI's chat.completion.chunk
stream (gateway.openai_formats; no I/O)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from gateway.openai_formats import ChatChunks, OpenAIError, chat_stream, server_events

DONE = {
    "text": "Paris.",
    "model": "SmolLM2-135M-Instruct",
    "provider": "local",
    "finish_reason": "stop",
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
}


def data_lines(stream: bytes) -> list[Any]:
    lines = [block.removeprefix(b"data: ") for block in stream.split(b"\n\n") if block]
    return [line.decode() if line == b"[DONE]" else json.loads(line) for line in lines]


async def _pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def collected(*parts: bytes) -> list[tuple[str, bytes]]:
    async def run() -> list[tuple[str, bytes]]:
        return [event async for event in server_events(_pieces(*parts))]

    return asyncio.run(run())


def test_server_events_are_found_across_chunk_boundaries() -> None:
    stream = (
        b'event: token\ndata: {"text": "Pa"}\n\n: a comment\n\n'
        b'event: token\r\ndata: {"text": "ris."}\r\n\r\n'
    )
    expected = [("token", b'{"text": "Pa"}'), ("token", b'{"text": "ris."}')]
    for cut in range(1, len(stream)):  # CRLFs cut in two included
        assert collected(stream[:cut], stream[cut:]) == expected, cut
    assert collected(b"data: 1\n\n") == [("message", b"1")]


def test_tokens_become_content_chunks_and_done_ends_the_stream() -> None:
    chunks = ChatChunks("requested-model", include_usage=True)
    out = chunks.start()
    for piece in ("Pa", "ris."):
        out += chunks.event("token", json.dumps({"text": piece}).encode())
    out += chunks.event("done", json.dumps(DONE).encode())
    events = data_lines(out)
    assert events[-1] == "[DONE]" and chunks.finished
    role, first, second, finish, usage = events[:-1]
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [first["choices"][0]["delta"], second["choices"][0]["delta"]] == [
        {"content": "Pa"},
        {"content": "ris."},
    ]
    assert finish["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert finish["model"] == "SmolLM2-135M-Instruct"  # the answering model, once known
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 12
    assert len({event["id"] for event in events[:-1]}) == 1
    assert all(event["object"] == "chat.completion.chunk" for event in events[:-1])


def test_an_error_event_ends_the_stream_with_openais_error_object() -> None:
    chunks = ChatChunks("m", include_usage=False)
    error = {"error": {"code": "bad_gateway", "message": "upstream died", "details": []}}
    (event,) = data_lines(chunks.event("error", json.dumps(error).encode()))
    assert event["error"]["message"] == "upstream died"
    assert event["error"]["type"] == "server_error"
    assert chunks.finished and chunks.event("token", b'{"text": "late"}') == b""
    (failed,) = data_lines(ChatChunks("m", False).error(OpenAIError(504, "timed out")))
    assert failed["error"]["message"] == "timed out"


def test_a_whole_answer_is_one_content_chunk() -> None:
    events = data_lines(chat_stream(DONE, include_usage=False))
    assert events[-1] == "[DONE]"
    contents = [e["choices"][0]["delta"].get("content") for e in events[:-1] if e["choices"]]
    assert contents == ["", "Paris.", None]
