"""The one error shape for the gateway's own answers, and how upstream failures map to it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

import httpx
from starlette.types import Send

from gateway.http1 import ConnectFailed, ConnectTimeout
from shared_schemas.errors import error_payload

JSON_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"application/json"),)

FailureKind = Literal["connect", "timeout", "protocol"]


class UpstreamFailure(NamedTuple):
    """What went wrong talking to a backend: ``connect`` means nothing reached it."""

    status: int
    kind: FailureKind
    message: str


class GatewayError(Exception):
    """A request the gateway answers itself with the error shape (401, 413, 429, ...)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Iterable[tuple[bytes, bytes]] = (),
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)
        self.details = details


async def send_json(
    send: Send,
    status: int,
    payload: dict[str, Any] | bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer a whole JSON response in two ASGI messages."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    raw = [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send,
    status: int,
    message: str,
    request_id: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
    details: list[dict[str, Any]] | None = None,
) -> None:
    """Answer ``{"error": {"code", "message", "details"}, "request_id"}`` with ``status``."""
    await send_json(
        send, status, error_payload(status, message, request_id, details=details), headers
    )


def classify(exc: BaseException, backend: str) -> UpstreamFailure | None:
    """Map an upstream (gateway.http1 or httpx) failure to 502/504; None when it is neither."""
    if isinstance(exc, ConnectTimeout | httpx.ConnectTimeout):
        return UpstreamFailure(504, "timeout", f"backend {backend!r} did not accept a connection")
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return UpstreamFailure(504, "timeout", f"backend {backend!r} timed out")
    if isinstance(exc, ConnectFailed | ConnectionRefusedError | httpx.ConnectError):
        return UpstreamFailure(502, "connect", f"backend {backend!r} is unreachable")
    if isinstance(exc, OSError | httpx.TransportError):
        name = type(exc).__name__
        return UpstreamFailure(502, "protocol", f"backend {backend!r} failed: {name}")
    return None
