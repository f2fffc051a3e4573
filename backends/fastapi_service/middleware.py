"""Pure-ASGI middleware: request ids, and one log record per request after it is sent.

Written against the raw ASGI interface (as Starlette's own middleware is) so it streams
and adds no per-request task switching. The endpoint leaves what it validated and
answered in ``scope["state"]["ml_log"]``; nothing here touches the database directly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backends.core.persistence.records import RequestRecord

REQUEST_ID_HEADER = "x-request-id"
UNLOGGED_PATHS = frozenset({"/health", "/live", "/ready", "/openapi.json", "/docs", "/redoc"})


def new_request_id(headers: Headers) -> str:
    """The caller's X-Request-ID when it is sane, else a fresh uuid4."""
    given = headers.get(REQUEST_ID_HEADER, "")
    if 0 < len(given) <= 128 and given.isprintable():
        return given
    return str(uuid.uuid4())


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        service_name: str,
        submit: Callable[[RequestRecord], None] | None,
    ) -> None:
        self.app = app
        self.service_name = service_name
        self.submit = submit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = new_request_id(headers)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["ml_log"] = {}
        started = time.perf_counter()
        status_holder: dict[str, int] = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.submit is not None and scope["path"] not in UNLOGGED_PATHS:
                self.submit(
                    self._record(scope, headers, request_id, status_holder["status"], started)
                )

    def _record(
        self, scope: Scope, headers: Headers, request_id: str, status: int, started: float
    ) -> RequestRecord:
        log: dict[str, Any] = scope["state"].get("ml_log", {})
        client = scope.get("client")
        return RequestRecord.build(
            service_name=self.service_name,
            endpoint=str(log.get("endpoint") or scope["path"]),
            method=scope["method"],
            status_code=status,
            duration_ms=(time.perf_counter() - started) * 1000,
            request_id=request_id,
            request_payload=log.get("request"),
            response_payload=log.get("response"),
            error_message=log.get("error"),
            user_id=headers.get("x-user-id"),
            organization_id=headers.get("x-organization-id"),
            credits_charged=_int_or_zero(headers.get("x-credits-charged")),
            ip_address=_client_ip(headers, client),
            user_agent=headers.get("user-agent"),
        )


def _int_or_zero(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _client_ip(headers: Headers, client: tuple[str, int] | None) -> str | None:
    """The gateway's X-Forwarded-For first hop, else the socket peer; None if not an IP."""
    import ipaddress

    candidate = (headers.get("x-forwarded-for") or "").split(",")[0].strip()
    if not candidate and client:
        candidate = client[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None
