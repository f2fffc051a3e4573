"""The one error shape: ``{"error": {"code", "message", "details"}, "request_id"}``."""

from __future__ import annotations

from typing import Any

from backends.core.api.limits import MAX_ERROR_DETAILS
from backends.core.errors import MLServiceError

STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def code_for_status(status: int) -> str:
    """The error code of an HTTP status (unknown 4xx -> bad_request, 5xx -> internal_error)."""
    return STATUS_CODES.get(status, "bad_request" if status < 500 else "internal_error")


def error_body(
    status: int,
    message: str,
    request_id: str,
    *,
    code: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "error": {
            "code": code or code_for_status(status),
            "message": message,
            "details": (details or [])[:MAX_ERROR_DETAILS],
        },
        "request_id": request_id,
    }


def error_body_for(exc: MLServiceError, request_id: str) -> dict[str, Any]:
    return error_body(exc.status_code, exc.message, request_id, code=exc.code, details=exc.details)
