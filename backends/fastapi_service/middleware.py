"""Pure-ASGI middleware: the request id, the credits charged, the last net for bugs, one
log row per request.

Written against the raw ASGI interface (as Starlette's own middleware is) so it streams
and adds no per-request task switching. The endpoint leaves what it validated and
answered in ``scope["state"]["ml_notes"]``; nothing here touches the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backends.core.metering.meter import Meter
from backends.core.persistence.log_notes import LogNotes, RequestFacts, request_record
from backends.core.persistence.records import RequestRecord
from backends.fastapi_service.errors import send_unexpected_error
from shared_schemas import request_meta

REQUEST_ID = request_meta.REQUEST_ID_HEADER.encode()
CREDITS = request_meta.CREDITS_HEADER.encode()
# the headers a request's log row reads, picked out in one pass over the raw list
_NOTED = {
    name.encode(): name for name in (*request_meta.NOTED_HEADERS, request_meta.REQUEST_ID_HEADER)
}


def _noted_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {_NOTED[name]: value.decode("latin-1") for name, value in raw if name in _NOTED}


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        service_name: str,
        submit: Callable[[RequestRecord], None] | None,
        meter: Meter,
        gateway_secret: str = "",
    ) -> None:
        self.app = app
        self.service_name = service_name
        self.submit = submit
        self.meter = meter
        self.gateway_secret = gateway_secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _noted_headers(scope["headers"])  # ASGI header names are lower-case
        request_id = request_meta.request_id_from(headers.get(request_meta.REQUEST_ID_HEADER))
        rid = request_id.encode()
        notes = LogNotes()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["ml_notes"] = notes
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                credits = str(notes.settle(self.meter, status)).encode()
                ours = [(REQUEST_ID, rid), (CREDITS, credits)]
                raw = message.get("headers")
                message["headers"] = [*raw, *ours] if raw else ours
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status:  # the response is on its way: nothing left to answer with
                raise
            await send_unexpected_error(
                send_with_id, exc, request_id, notes, f"{scope['method']} {scope['path']}"
            )
        finally:
            if self.submit is not None and request_meta.is_logged(scope["path"]):
                client = scope.get("client")
                facts = RequestFacts(
                    method=scope["method"],
                    path=scope["path"],
                    status=status or 500,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    request_id=request_id,
                    headers=headers,
                    peer=client[0] if client else None,
                    from_gateway=request_meta.from_gateway(
                        headers.get(request_meta.GATEWAY_SECRET_HEADER), self.gateway_secret
                    ),
                )
                notes.settle(self.meter, facts.status)  # no response started: a 500
                self.submit(request_record(self.service_name, notes, facts))
