"""Two tiny HTTP servers for the conformance CLI tests: one honours spec.json, one breaks it."""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, Router

SPEC_PATH = Path(__file__).with_name("spec.json")
ITEM_ID = re.compile(r"[a-z0-9]{1,16}")


def _error(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {"code": code, "message": message, "details": details or []},
        "request_id": uuid.uuid4().hex,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def build_app(*, violate: bool, drift: bool = False) -> Starlette:
    """The test API; `violate=True` plants a 500, a wrong response schema and lax validation;
    `drift=True` answers the item list with a wrong total that the schema still accepts."""
    spec = json.loads(SPEC_PATH.read_text())
    create_schema = spec["components"]["schemas"]["ItemCreate"]
    validator = jsonschema_rs.validator_for(create_schema)
    items: dict[str, dict[str, Any]] = {}
    ids = itertools.count(1)

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def create_item(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "unsupported_media_type", "expected application/json")
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _error(400, "bad_request", "malformed JSON body")
        errors = [
            {
                "loc": ["body", *[str(p) for p in e.instance_path]],
                "message": e.message,
                "type": "value_error",
            }
            for e in validator.iter_errors(payload)
        ]
        if errors:
            return _error(422, "validation_error", "invalid request", errors)
        if violate and payload["quantity"] > 50:
            return PlainTextResponse("boom", status_code=500)
        item = {"id": f"i{next(ids)}", "name": payload["name"], "quantity": payload["quantity"]}
        items[item["id"]] = item
        return JSONResponse(item)

    async def items_route(request: Request) -> Response:
        # One route per path, so a 405 names every method the path serves in `Allow`.
        return await (create_item if request.method == "POST" else list_items)(request)

    async def list_items(request: Request) -> Response:
        raw = request.query_params.getlist("limit")
        limit = 10
        if raw:
            try:
                limit = int(raw[0])
                valid = len(raw) == 1 and 1 <= limit <= 50 and str(limit) == raw[0]
            except ValueError:
                valid = False
            if not valid:
                if not violate:
                    return _error(
                        422,
                        "validation_error",
                        "limit must be an integer in 1..50",
                        [{"loc": ["query", "limit"], "message": "bad", "type": "range"}],
                    )
                limit = 10
        listed = list(items.values())[: max(limit, 0)]
        return JSONResponse({"items": listed, "total": len(items) + drift})

    async def get_item(request: Request) -> Response:
        item_id = request.path_params["item_id"]
        if violate:
            return JSONResponse({"id": item_id, "name": "x", "quantity": "many"})
        if not ITEM_ID.fullmatch(item_id):
            return _error(
                422,
                "validation_error",
                "bad item id",
                [{"loc": ["path", "item_id"], "message": "bad", "type": "pattern"}],
            )
        if item_id not in items:
            return _error(404, "not_found", f"item {item_id} not found")
        return JSONResponse(items[item_id])

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if violate:
            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return _error(exc.status_code, code, str(exc.detail), headers=exc.headers)

    routes = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/items", items_route, methods=["GET", "POST"]),
        Route("/items/{item_id}", get_item, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.router = Router(routes=routes, redirect_slashes=False)
    return app


class _Server:
    def __init__(self, app: Starlette) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, lifespan="off", log_level="error", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session")
def good_url() -> Iterator[str]:
    with _Server(build_app(violate=False)) as url:
        yield url


@pytest.fixture(scope="session")
def bad_url() -> Iterator[str]:
    with _Server(build_app(violate=True)) as url:
        yield url


@pytest.fixture
def fresh_and_drifted() -> Iterator[tuple[str, str]]:
    """Two new servers (no items yet): a faithful one and one whose list total drifts."""
    with _Server(build_app(violate=False)) as a, _Server(build_app(violate=False, drift=True)) as b:
        yield a, b


@pytest.fixture(scope="session")
def spec_path() -> Path:
    return SPEC_PATH
