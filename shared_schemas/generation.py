"""Text generation from a prompt (/analysis/generate); needs an LLM provider."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from shared_schemas.common import (
    MODEL_FIELD_DESCRIPTION,
    PROVIDER_DESCRIPTION,
    RESULT_MODEL_DESCRIPTION,
    ModelName,
    ProviderName,
    RequestModel,
    ResponseModel,
    Usage,
    non_blank,
)
from shared_schemas.errors import ErrorResponse

PromptText = Annotated[str, non_blank(20_000)]

EVENT_STREAM_MEDIA_TYPE = "text/event-stream"
TOKEN_EVENT = "token"
DONE_EVENT = "done"
ERROR_EVENT = "error"
EVENT_STREAM_DESCRIPTION = (
    "With `stream: true`: server-sent events as the model produces the text (the schema "
    "describes one event, its data a JSON document). Each piece is "
    '`event: token` with `data: {"text": "..."}` (a GenerateToken); the last event is '
    "`event: done` whose data is the whole GenerateResponse (text, model, provider, "
    "finish_reason, usage). An error before the first piece is an ordinary error response "
    "(the status and the error shape); an error after it ends the stream with "
    "`event: error` whose data is the error shape, and no `done`. Streamed answers are never "
    "cached."
)


class GenerateRequest(RequestModel):
    """Generate text; 503 service_unavailable when no LLM provider is configured."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prompt": "Write a two-sentence release note for faster search.",
                    "context": "Search latency dropped from 120 ms to 35 ms.",
                    "max_tokens": 120,
                    "temperature": 0.3,
                }
            ]
        }
    )

    prompt: PromptText = Field(description="Instruction (1..20 000 chars, not blank).")
    context: str | None = Field(
        default=None, max_length=50_000, description="Extra context, sent as the system message."
    )
    model: ModelName | None = Field(default=None, description=MODEL_FIELD_DESCRIPTION)
    max_tokens: int = Field(default=1000, ge=1, le=4000, description="Longest output in tokens.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature.")
    stream: bool = Field(
        default=False,
        description="Answer text/event-stream, token by token (see the 200 response), instead "
        "of one JSON object at the end.",
    )


class GenerateResponse(ResponseModel):
    """Generated text with token usage."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "text": "Search is now three times faster. Results arrive in about 35 ms.",
                    "model": "gpt-4o-mini",
                    "provider": "openai",
                    "finish_reason": "stop",
                    "usage": {"prompt_tokens": 41, "completion_tokens": 17, "total_tokens": 58},
                }
            ]
        }
    )

    text: str = Field(description="Generated text.")
    model: str = Field(description=RESULT_MODEL_DESCRIPTION)
    provider: ProviderName = Field(description=PROVIDER_DESCRIPTION)
    finish_reason: str | None = Field(
        description='Why generation stopped ("stop", "length", ...), when known.'
    )
    usage: Usage = Field(description="Token counts.")


class GenerateToken(ResponseModel):
    """One piece of streamed text (the data of a ``token`` event)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": " three times"}]})

    text: str = Field(description="The next piece of the generated text.")


# The events of a generation stream and the model of each one's data.
STREAM_EVENTS: dict[str, type[ResponseModel]] = {
    TOKEN_EVENT: GenerateToken,
    DONE_EVENT: GenerateResponse,
    ERROR_EVENT: ErrorResponse,
}
