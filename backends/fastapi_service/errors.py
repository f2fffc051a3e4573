"""The one place the FastAPI backend turns exceptions into the one error shape.

Domain errors and Starlette's HTTP errors are mapped by exception handlers (inside the
middleware stack); anything else is a bug that ``RequestContextMiddleware`` answers with
``send_unexpected_error``, so even a 500 carries the request's id and leaves its error
in the log row.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from backends.core.errors import MLServiceError
from backends.core.persistence.log_notes import LogNotes
from shared_schemas.errors import ErrorCode, error_payload

logger = logging.getLogger(__name__)
JSON_MEDIA_TYPE = "application/json"
INTERNAL_ERROR = "Internal server error"


def error_response(
    status: int,
    message: str,
    request_id: str,
    *,
    code: ErrorCode | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = error_payload(status, message, request_id, code=code, details=details)
    return Response(_dump(body), status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers)


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "")) or "unknown"


def _note_error(request: Request, message: str) -> None:
    notes = getattr(request.state, "ml_notes", None)
    if isinstance(notes, LogNotes):
        notes.error = message


async def _ml_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MLServiceError)
    _note_error(request, exc.message)
    return error_response(
        exc.status_code, exc.message, request_id_of(request), code=exc.code,
        details=exc.details, headers=exc.headers,
    )  # fmt: skip


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    messages = {404: f"No route for {request.url.path}", 405: "Method not allowed"}
    message = messages.get(exc.status_code, str(exc.detail))
    _note_error(request, message)
    return error_response(
        exc.status_code, message, request_id_of(request), headers=getattr(exc, "headers", None)
    )


async def send_unexpected_error(
    send: Send, exc: Exception, request_id: str, notes: LogNotes, where: str
) -> None:
    """A bug: answer 500 in the error shape. The message stays generic so no internal
    detail (or secret) leaks; the traceback goes to the log, the exception type to the row."""
    logger.error("unhandled error on %s", where, exc_info=exc)
    notes.error = f"internal error: {type(exc).__name__}"
    body = _dump(error_payload(500, INTERNAL_ERROR, request_id))
    headers = [(b"content-type", JSON_MEDIA_TYPE.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MLServiceError, _ml_service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
