"""The one place the Django backend turns exceptions into the one error shape.

DRF's exception handler, Django's handler400/403/404/500 and the middleware catch-all all
end here, so every non-2xx body is ``{"error": {...}, "request_id": ...}``. Validation is
422 (DRF's 400 never happens: bodies are validated by the shared pydantic models).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from rest_framework import exceptions as drf
from rest_framework.request import Request

from backends.core.errors import MLServiceError
from backends.django_service.mlapi.context import context_of, request_id_of
from shared_schemas.errors import ErrorCode, error_payload

logger = logging.getLogger(__name__)
_SHAPED = "_mlapi_error_shape"
# headers of a framework's error response that still mean something in ours
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def error_response(
    request: HttpRequest | None,
    status: int,
    message: str,
    *,
    code: ErrorCode | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """A response in the error shape, carrying the request's id (and noted for its log row)."""
    body = error_payload(status, message, request_id_of(request), code=code, details=details)
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    setattr(response, _SHAPED, True)
    context = context_of(request)
    if context is not None:
        context.notes.error = message
    return response


def is_shaped(response: HttpResponseBase) -> bool:
    return bool(getattr(response, _SHAPED, False))


def response_for_exception(request: HttpRequest | None, exc: BaseException) -> HttpResponse:
    """Map any exception to its status and the error shape; unexpected ones are a logged 500."""
    if isinstance(exc, MLServiceError):
        return error_response(
            request, exc.status_code, exc.message, code=exc.code, details=exc.details,
            headers=exc.headers,
        )  # fmt: skip
    if isinstance(exc, drf.MethodNotAllowed):
        return error_response(request, 405, "Method not allowed")
    if isinstance(exc, drf.APIException):
        return error_response(request, exc.status_code, _drf_message(exc))
    if isinstance(exc, Http404):
        return error_response(request, 404, f"No route for {_path(request)}")
    if isinstance(exc, PermissionDenied):
        return error_response(request, 403, "Forbidden")
    if isinstance(exc, RequestDataTooBig):
        return error_response(request, 413, "Request body is too large")
    if isinstance(exc, MultiPartParserError | UnreadablePostError | SuspiciousOperation):
        return error_response(request, 400, f"Malformed request: {exc}"[:500])
    # A bug: the contract suite treats any 500 as a failure. The message stays generic so
    # no internal detail (or secret) leaks; the traceback goes to the log.
    logger.error("unhandled error on %s", _path(request), exc_info=exc)
    response = error_response(request, 500, "Internal server error")
    if (context := context_of(request)) is not None:
        context.notes.error = f"internal error: {type(exc).__name__}"
    return response


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every exception a DRF view raises ends here."""
    request = context.get("request")
    http_request = request._request if isinstance(request, Request) else request
    return response_for_exception(http_request, exc)


def reshape(request: HttpRequest, response: HttpResponseBase) -> HttpResponse:
    """Catch-all: a non-2xx response some framework code built itself, in our shape."""
    status = response.status_code
    messages = {404: f"No route for {request.path}", 405: "Method not allowed"}
    headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
    return error_response(
        request, status, messages.get(status, response.reason_phrase), headers=headers
    )


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return response_for_exception(request, exception or SuspiciousOperation("Bad request"))


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return response_for_exception(request, exception or PermissionDenied())


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 404, f"No route for {request.path}")


def handler500(request: HttpRequest) -> HttpResponse:
    # Django has logged the traceback already (django.request, level ERROR).
    response = error_response(request, 500, "Internal server error")
    if (context := context_of(request)) is not None:
        context.notes.error = "internal error"
    return response


def _drf_message(exc: drf.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, list | dict):
        return json.dumps(detail, default=str)[:500]
    return str(detail)


def _path(request: HttpRequest | None) -> str:
    return request.path if request is not None else "?"
