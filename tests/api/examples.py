"""Requests built from the contract's own examples (the first example of each request model)."""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import BaseModel

from backends.core.api.api_request import ApiRequest
from backends.core.api.validation import parse_json_body, validate_form
from shared_schemas.operations import MULTIPART, Operation, by_id

RAG_EXAMPLE_COLLECTION = "support"
WAV_NAME = "hello.wav"


def first_example(model: type[BaseModel]) -> dict[str, Any]:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict), f"{model.__name__} has no examples"
    examples = extra["examples"]
    assert isinstance(examples, list) and examples, f"{model.__name__} has no examples"
    example = examples[0]
    assert isinstance(example, dict)
    return dict(example)


def example_request(operation: Operation, wav: bytes) -> ApiRequest:
    """The operation's first example, validated the way a backend validates a real request.

    Audio examples in the contract are placeholders (a header without samples), so the
    transcription operations get real speech instead.
    """
    model = operation.request_model
    if model is None:
        path_params = {"name": RAG_EXAMPLE_COLLECTION} if operation.path_params else {}
        return ApiRequest(operation, None, path_params)
    example = first_example(model)
    if operation.request_content_type == MULTIPART:
        example["file"] = wav
        return ApiRequest(operation, validate_form(model, example), {}, {"file": WAV_NAME})
    if operation.operation_id == "transcription_transcribe_base64":
        example["audio"] = base64.b64encode(wav).decode()
    body = parse_json_body(model, json.dumps(example).encode())
    return ApiRequest(operation, body)


def request_for(operation_id: str, body: dict[str, Any]) -> ApiRequest:
    """A JSON request for ``operation_id`` with ``body``, validated like a real one."""
    operation = by_id()[operation_id]
    assert operation.request_model is not None
    return ApiRequest(
        operation, parse_json_body(operation.request_model, json.dumps(body).encode())
    )
