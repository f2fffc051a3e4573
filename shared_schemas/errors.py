"""The one error shape every backend and the gateway answer with on any non-2xx status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from shared_schemas.common import ResponseModel

ErrorCode = Literal[
    "validation_error",
    "bad_request",
    "unauthorized",
    "not_found",
    "method_not_allowed",
    "request_timeout",
    "payload_too_large",
    "unsupported_media_type",
    "rate_limited",
    "internal_error",
    "bad_gateway",
    "service_unavailable",
    "gateway_timeout",
]

STATUS_BY_CODE: dict[ErrorCode, int] = {
    "validation_error": 422,
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "internal_error": 500,
    "bad_gateway": 502,
    "service_unavailable": 503,
    "gateway_timeout": 504,
}

CODE_BY_STATUS: dict[int, ErrorCode] = {status: code for code, status in STATUS_BY_CODE.items()}

MAX_ERROR_DETAILS = 1000
"""The contract's bound on ``error.details`` (a 100-item batch can fail per item)."""


def code_for_status(status: int) -> ErrorCode:
    """The contract's code for an HTTP status; a status without one of its own (403, 408,
    431, ...) gets the generic code of its class: bad_request or internal_error."""
    return CODE_BY_STATUS.get(status, "bad_request" if status < 500 else "internal_error")


def error_payload(
    status: int,
    message: str,
    request_id: str,
    *,
    code: ErrorCode | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The body of every non-2xx answer; the one place details are truncated."""
    return {
        "error": {
            "code": code or code_for_status(status),
            "message": message,
            "details": (details or [])[:MAX_ERROR_DETAILS],
        },
        "request_id": request_id,
    }


_VALIDATION_EXAMPLE: JsonDict = {
    "error": {
        "code": "validation_error",
        "message": "The request body is invalid.",
        "details": [
            {
                "loc": ["body", "texts", 3],
                "message": "String should match pattern",
                "type": "string_pattern_mismatch",
            }
        ],
    },
    "request_id": "0b6f3c1e9d2a4f5b8c7d6e5f4a3b2c1d",
}
_NOT_FOUND_EXAMPLE: JsonDict = {
    "error": {
        "code": "not_found",
        "message": "Collection 'manuals' does not exist.",
        "details": [],
    },
    "request_id": "5f1e2d3c4b5a69788796a5b4c3d2e1f0",
}


class ErrorDetail(ResponseModel):
    """One problem with the request, located in it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"loc": ["body", "top_k"], "message": "Input should be >= 1", "type": "ge"}
            ]
        }
    )

    loc: list[str | int] = Field(
        max_length=32,
        description='Path to the offending value, e.g. ["body", "documents", 0, "text"].',
    )
    message: str = Field(description="Human-readable explanation.")
    type: str = Field(
        description='Machine-readable kind, e.g. "missing", "string_too_long", "invalid_audio".'
    )


class ErrorBody(ResponseModel):
    """What went wrong: a stable code, a message and optional per-value details."""

    model_config = ConfigDict(json_schema_extra={"examples": [_NOT_FOUND_EXAMPLE["error"]]})

    code: ErrorCode = Field(description="Stable error code; each code has one HTTP status.")
    message: str = Field(description="Human-readable summary.")
    details: list[ErrorDetail] = Field(
        default_factory=list,
        max_length=MAX_ERROR_DETAILS,
        description="Per-value problems (validation errors, failed readiness checks).",
    )


class ErrorResponse(ResponseModel):
    """Body of every non-2xx response."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [_VALIDATION_EXAMPLE, _NOT_FOUND_EXAMPLE]}
    )

    error: ErrorBody = Field(description="The error.")
    request_id: str = Field(
        min_length=1,
        max_length=128,
        description="Id of the request (the X-Request-ID header), for support and logs.",
    )
