"""create_app(settings, transport=...): tests swap the network for any httpx transport."""

from __future__ import annotations

import httpx

from gateway.app import create_app
from tests.gateway.conftest import make_settings


async def _call(transport: httpx.AsyncBaseTransport, path: str) -> httpx.Response:
    app = create_app(make_settings({"mock": "http://backend.test:9"}, "mock"), transport)
    async with app.lifespan():
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw.test")
        async with client:
            return await client.get(path, headers={"X-Request-ID": "inj-1"})


async def test_requests_go_through_the_injected_transport() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201, json={"ok": True}, headers={"Connection": "x-drop", "X-Drop": "1"}
        )

    response = await _call(httpx.MockTransport(handler), "/api/v1/rag/stats?full=1")
    assert response.status_code == 201
    assert response.json() == {"ok": True}
    assert response.headers["x-ml-backend"] == "mock"
    assert "x-drop" not in response.headers
    assert str(seen[0].url) == "http://backend.test:9/api/v1/rag/stats?full=1"
    assert seen[0].headers["x-request-id"] == "inj-1"
    assert seen[0].extensions["timeout"]["read"] == 60.0


async def test_transport_errors_map_to_502_and_504() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    refused = await _call(httpx.MockTransport(refuse), "/api/v1/rag/stats")
    stalled = await _call(httpx.MockTransport(stall), "/api/v1/rag/stats")
    assert refused.status_code == 502
    assert refused.json()["error"]["code"] == "bad_gateway"
    assert refused.json()["request_id"] == "inj-1"
    assert stalled.status_code == 504
    assert stalled.json()["error"]["code"] == "gateway_timeout"
