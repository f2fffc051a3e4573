"""Domain exceptions raised by the engine.

Each web framework maps ``MLServiceError`` to the one error shape in a single place
(``{"error": {"code", "message", "details"}, "request_id"}``); the engine never builds
HTTP responses itself.
"""

from __future__ import annotations

from typing import Any

from shared_schemas.errors import ErrorCode


class MLServiceError(Exception):
    """Base class: carries the HTTP status, the stable error code and optional details."""

    status_code: int = 500
    code: ErrorCode = "internal_error"
    # Seconds after which a retry may succeed: sent as Retry-After (429, 503 overload).
    retry_after_s: int | None = None

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[dict[str, Any]] = details or []

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the error carries."""
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(self.retry_after_s)}


class InvalidInput(MLServiceError):
    """The request is well-formed but its content cannot be processed (e.g. undecodable audio)."""

    status_code = 422
    code = "validation_error"


class BadRequest(MLServiceError):
    """The body is malformed (not JSON, wrong multipart framing)."""

    status_code = 400
    code = "bad_request"


class NotFound(MLServiceError):
    """A named resource (collection, route) does not exist."""

    status_code = 404
    code = "not_found"


class RequestTimeout(MLServiceError):
    """The client stayed silent too long while sending its body (a slow or stalled client)."""

    status_code = 408
    code = "request_timeout"


class PayloadTooLarge(MLServiceError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(MLServiceError):
    status_code = 415
    code = "unsupported_media_type"


class ProviderUnavailable(MLServiceError):
    """A feature needs a provider that is not configured (e.g. an LLM without an API key)."""

    status_code = 503
    code = "service_unavailable"


class StoreUnreachable(ProviderUnavailable):
    """A store could not be reached (an outage), as opposed to one that is misconfigured."""


class UpstreamError(MLServiceError):
    """A hosted provider answered with an error or could not be reached."""

    status_code = 502
    code = "bad_gateway"


class UpstreamTimeout(MLServiceError):
    status_code = 504
    code = "gateway_timeout"


class RateLimited(MLServiceError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Overloaded(MLServiceError):
    """A model's queue is full: answered at once (503 + Retry-After), never queued for seconds."""

    status_code = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnknownModel(NotFound):
    """No provider here serves the requested model id (OpenAI answers model_not_found)."""

    def __init__(self, model: str, known: list[str] | tuple[str, ...]) -> None:
        super().__init__(
            f"model {model!r} is not available here; available: {', '.join(known)}",
            details=[
                {"loc": ["body", "model"], "message": "unknown model", "type": "model_not_found"}
            ],
        )
