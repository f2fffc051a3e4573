"""RequestContextMiddleware over raw ASGI messages: ids, the last net for bugs, log rows."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from backends.core.metering.meter import Meter
from backends.core.metering.prices import CreditSettings
from backends.core.persistence.records import RequestRecord
from backends.fastapi_service.middleware import RequestContextMiddleware


def _scope(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": headers or [],
        "client": ("127.0.0.1", 50000),
    }


async def _call(app: Any, scope: Scope) -> tuple[list[Message], list[RequestRecord]]:
    records: list[RequestRecord] = []
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    meter = Meter(CreditSettings(_env_file=None))
    await RequestContextMiddleware(app, "fastapi", records.append, meter)(scope, receive, send)
    return sent, records


async def _failing(scope: Scope, receive: Receive, send: Send) -> None:
    raise ZeroDivisionError("a bug with a secret sk-live-123 in its message")


async def test_an_unhandled_error_is_a_500_in_the_error_shape_with_the_request_id() -> None:
    scope = _scope("/api/v1/analysis/sentiment", [(b"x-request-id", b"bug-1")])
    sent, records = await _call(_failing, scope)
    start, body = sent
    assert start["status"] == 500
    assert (b"x-request-id", b"bug-1") in start["headers"]
    payload = json.loads(body["body"])
    assert payload["request_id"] == "bug-1"
    assert payload["error"]["code"] == "internal_error"
    assert "sk-live" not in body["body"].decode()
    (record,) = records
    assert (record.status_code, record.request_id) == (500, "bug-1")
    assert record.error_message == "internal error: ZeroDivisionError"


async def test_an_error_after_the_response_started_is_not_answered_twice() -> None:
    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("mid-stream")

    # the server must see the error of a response already started
    with pytest.raises(RuntimeError, match="mid-stream"):
        await _call(half, _scope("/api/v1/analysis/sentiment"))


async def test_probes_leave_no_row_and_a_bad_request_id_is_replaced() -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent, records = await _call(ok, _scope("/live", [(b"x-request-id", b"has space")]))
    assert records == []
    ids = [value for name, value in sent[0]["headers"] if name == b"x-request-id"]
    assert len(ids) == 1 and ids[0] != b"has space" and len(ids[0]) == 32
