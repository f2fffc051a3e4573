"""The one place the FastAPI backend turns exceptions into the one error shape."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backends.core.api.error_body import error_body, error_body_for
from backends.core.api.validation import validation_details
from backends.core.errors import MLServiceError, RateLimited

logger = logging.getLogger(__name__)


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "")) or "unknown"


def _note_error(request: Request, message: str) -> None:
    log = getattr(request.state, "ml_log", None)
    if isinstance(log, dict):
        log["error"] = message


async def _ml_service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MLServiceError)
    _note_error(request, exc.message)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
    return JSONResponse(
        error_body_for(exc, request_id_of(request)), status_code=exc.status_code, headers=headers
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    messages = {404: f"No route for {request.url.path}", 405: "Method not allowed"}
    message = messages.get(exc.status_code, str(exc.detail))
    _note_error(request, message)
    return JSONResponse(
        error_body(exc.status_code, message, request_id_of(request)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _framework_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(e.get("loc", [])), "message": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse(
        error_body(422, "Request validation failed", request_id_of(request), details=details),
        status_code=422,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug: the contract suite treats any 500 as a failure. The message stays generic so
    # no internal detail (or secret) leaks; the traceback goes to the log.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    _note_error(request, f"internal error: {type(exc).__name__}")
    return JSONResponse(
        error_body(500, "Internal server error", request_id_of(request)), status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MLServiceError, _ml_service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _framework_validation_error)
    app.add_exception_handler(Exception, _unexpected_error)


__all__ = ["install_error_handlers", "request_id_of", "validation_details"]
