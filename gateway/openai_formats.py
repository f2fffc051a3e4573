"""OpenAI's request and response bodies, translated to and from the contract's (no I/O).

Only what the contract can honour is accepted; a parameter it cannot honour (``n`` > 1,
tools, token-array input, a different ``dimensions``) is refused with a 400 that names it,
never silently dropped.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared_schemas import fresh_ids
from shared_schemas import generation as gen
from shared_schemas.embeddings import MAX_BATCH
from shared_schemas.errors import STATUS_BY_CODE

# Response headers of an event stream (no caching on the way).
EVENT_STREAM_HEADERS = ((b"cache-control", b"no-cache"),)


class _Body(BaseModel):
    # Unknown parameters are ignored, as the SDKs' extra_body and clients' defaults send some.
    model_config = ConfigDict(extra="ignore")


BodyT = TypeVar("BodyT", bound=_Body)

# The contract's field names, as the OpenAI parameter a client sent.
_PARAMS = {
    "texts": "input",
    "text": "input",
    "prompt": "messages",
    "context": "messages",
    "file": "file",
    "model": "model",
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "language": "language",
    "response_format": "response_format",
}
# Contract statuses that OpenAI answers differently: it says 400 for every invalid parameter.
_STATUS = {415: 400, 422: 400}


class OpenAIError(Exception):
    """An error answered as OpenAI's ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = _STATUS.get(status, status)
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": error_type(self.status),
                "param": self.param,
                "code": self.code,
            }
        }


def error_type(status: int) -> str:
    """OpenAI's error ``type`` for a status (the SDKs pick their exception by status)."""
    if status == 429:
        return "requests"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def from_contract_error(status: int, body: Any) -> OpenAIError:
    """The contract's ``{"error": {"code", "message", "details"}}`` as OpenAI's error."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return OpenAIError(status, f"backend answered HTTP {status}", code="bad_gateway")
    message = str(error.get("message") or f"HTTP {status}")
    details = error.get("details") or []
    first = details[0] if details and isinstance(details[0], dict) else {}
    loc = [part for part in first.get("loc") or [] if isinstance(part, str) and part != "body"]
    param = _PARAMS.get(loc[0]) if loc else None
    code = error.get("code")
    if first.get("type") == "model_not_found":
        code, param = "model_not_found", "model"
    return OpenAIError(status, message, param=param, code=code if isinstance(code, str) else None)


def parse(model: type[BodyT], payload: Any) -> BodyT:
    """Validate a request body; a 400 naming the first bad parameter otherwise."""
    if not isinstance(payload, dict):
        raise OpenAIError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(part) for part in error["loc"]) or None
        raise OpenAIError(400, f"{param}: {error['msg']}", param=param) from None


# --- models ---------------------------------------------------------------------------


def model_entry(model_id: str, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owned_by}


def model_list(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": entries}


# --- embeddings -----------------------------------------------------------------------


class EmbeddingsBody(_Body):
    input: str | list[str] | list[int] | list[list[int]]
    model: str = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)


def embedding_batches(body: EmbeddingsBody) -> list[dict[str, Any]]:
    """Contract batch bodies (at most 100 texts each) for the input, in order."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        raise OpenAIError(400, "input must not be empty", param="input")
    if not all(isinstance(text, str) for text in texts):
        raise OpenAIError(400, "token arrays are not supported here: send text", param="input")
    return [
        {"texts": texts[start : start + MAX_BATCH], "model": body.model}
        for start in range(0, len(texts), MAX_BATCH)
    ]


def embeddings_response(body: EmbeddingsBody, batches: list[dict[str, Any]]) -> dict[str, Any]:
    """OpenAI's embedding list from the contract's batch responses (vectors as asked)."""
    dimensions = batches[0]["dimensions"]
    if body.dimensions is not None and body.dimensions != dimensions:
        raise OpenAIError(
            400,
            f"dimensions={body.dimensions} is not supported: {batches[0]['model']} returns "
            f"{dimensions}-dimensional vectors only (leave dimensions out)",
            param="dimensions",
        )
    vectors = [vector for batch in batches for vector in batch["embeddings"]]
    prompt_tokens = sum(batch["usage"]["prompt_tokens"] for batch in batches)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": batches[0]["model"],
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "float":
        return vector
    # What OpenAI sends and its SDK decodes: little-endian float32, base64.
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


# --- chat completions -----------------------------------------------------------------


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatBody(_Body):
    messages: list[ChatMessage] = Field(min_length=1)
    model: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    n: int = 1
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    tools: list[Any] | None = None


def _text(message: ChatMessage, index: int) -> str:
    if isinstance(message.content, str) or message.content is None:
        return message.content or ""
    parts: list[str] = []
    for part in message.content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise OpenAIError(
                400, "only text content parts are supported", param=f"messages.{index}.content"
            )
        parts.append(part["text"])
    return "".join(parts)


def generate_request(body: ChatBody) -> dict[str, Any]:
    """The contract's /analysis/generate body for a chat: system turns become its context.

    One user turn is the prompt as it is; a longer conversation becomes a transcript of
    ``Role: text`` lines, since the contract takes a single prompt.
    """
    if body.n != 1:
        raise OpenAIError(400, "only n=1 is supported", param="n")
    if body.tools:
        raise OpenAIError(400, "tools are not supported", param="tools")
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for index, message in enumerate(body.messages):
        text = _text(message, index)
        if message.role in ("system", "developer"):
            system.append(text)
        else:
            turns.append((message.role, text))
    if not turns or turns[-1][0] != "user":
        raise OpenAIError(400, "the last message must be a user message", param="messages")
    if len(turns) == 1:
        prompt = turns[0][1]
    else:
        prompt = "\n".join(f"{role.capitalize()}: {text}" for role, text in turns)
    request: dict[str, Any] = {"prompt": prompt, "model": body.model}
    if system:
        request["context"] = "\n\n".join(system)
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens is not None:
        request["max_tokens"] = max_tokens
    if body.temperature is not None:
        request["temperature"] = body.temperature
    return request


def completion_id() -> str:
    return "chatcmpl-" + fresh_ids.new_hex_id()[:24]


def chat_response(generated: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's chat.completion from the contract's GenerateResponse."""
    usage = generated.get("usage") or {}
    prompt_tokens = usage.get("prompt_tokens", 0)
    completion_tokens = usage.get("completion_tokens", 0)
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": generated["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": generated["text"]},
                "finish_reason": generated.get("finish_reason") or "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chat_stream(generated: dict[str, Any], include_usage: bool) -> bytes:
    """A whole answer as chat.completion.chunk events, ending ``data: [DONE]``: one content
    chunk, for a backend that answered ``stream: true`` with one JSON object."""
    chunks = ChatChunks(generated["model"], include_usage)
    token = json.dumps({"text": generated["text"]}).encode()
    return (
        chunks.start()
        + chunks.event(gen.TOKEN_EVENT, token)
        + chunks.event(gen.DONE_EVENT, json.dumps(generated).encode())
    )


class ChatChunks:
    """OpenAI's chat.completion.chunk events of one answer, from the contract's stream events.

    The contract streams ``token`` events, then ``done`` (the whole GenerateResponse) or
    ``error`` (the error shape); OpenAI's stream is a role chunk, content chunks, a chunk with
    the finish reason, the usage chunk when asked for, and ``data: [DONE]``. An error ends it
    with OpenAI's error object as the data (the SDKs raise it as APIError).
    """

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.finished = False

    def start(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def event(self, name: str, data: bytes) -> bytes:
        """The chunks for one contract event (nothing for an event this does not know)."""
        if self.finished:
            return b""
        payload = json.loads(data)
        if name == gen.TOKEN_EVENT:
            return self._chunk({"content": payload["text"]})
        if name == gen.DONE_EVENT:
            self.finished = True
            whole = chat_response(payload)
            self.model = whole["model"]
            out = self._chunk({}, whole["choices"][0]["finish_reason"])
            if self.include_usage:
                out += _data({**self._base(), "choices": [], "usage": whole["usage"]})
            return out + b"data: [DONE]\n\n"
        if name == gen.ERROR_EVENT:
            status = STATUS_BY_CODE.get(payload.get("error", {}).get("code"), 500)
            return self.error(from_contract_error(status, payload))
        return b""

    def error(self, error: OpenAIError) -> bytes:
        """The last event of a stream that failed after it started."""
        self.finished = True
        return _data(error.body())

    def _base(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return _data({**self._base(), "choices": [choice]})


def _data(event: Any) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"


async def server_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """(event name, data) of each server-sent event in a byte stream, as each one completes.

    Only what the contract's streams use: ``event:`` and one ``data:`` line per event
    (JSON has no raw newline); comments and other fields are skipped.
    """
    buffer = b""
    async for chunk in chunks:
        # on the buffer, not the chunk: a CRLF may be split between two chunks
        buffer = (buffer + chunk).replace(b"\r\n", b"\n")
        while (end := buffer.find(b"\n\n")) >= 0:
            block, buffer = buffer[:end], buffer[end + 2 :]
            name, data = "message", b""
            for line in block.split(b"\n"):
                field, _, value = line.partition(b":")
                value = value.removeprefix(b" ")
                if field == b"event":
                    name = value.decode("utf-8", "replace")
                elif field == b"data":
                    data = value
            if data:
                yield name, data


# --- audio transcriptions -------------------------------------------------------------

TRANSCRIPTION_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


def transcription_json(transcript: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's json transcription (text, plus the audio length it bills by)."""
    return {
        "text": transcript["text"],
        "usage": {"type": "duration", "seconds": _seconds(transcript)},
    }


def transcription_verbose(transcript: dict[str, Any], temperature: float) -> dict[str, Any]:
    """OpenAI's verbose_json transcription from the contract's verbose one."""
    return {
        "task": "transcribe",
        "language": transcript.get("language"),
        "duration": transcript["duration"],
        "text": transcript["text"],
        "segments": [
            {
                "id": segment["id"],
                "seek": 0,
                "start": segment["start"],
                "end": segment["end"],
                "text": segment["text"],
                "tokens": [],
                "temperature": temperature,
                "avg_logprob": segment.get("avg_logprob"),
                "no_speech_prob": segment.get("no_speech_prob"),
            }
            for segment in transcript.get("segments", [])
        ],
        "usage": {"type": "duration", "seconds": _seconds(transcript)},
    }


def _seconds(transcript: dict[str, Any]) -> int:
    return max(1, round(float(transcript.get("duration") or 0)))
