"""One generic endpoint per contract operation, all built from shared_schemas.operations.

The endpoint only does I/O around ``backends.core.api.flow.RequestFlow``: read the body,
await the cache, run the handler on the event loop or in a worker thread, respond.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import Response

from backends.core.api.api_request import ApiResult
from backends.core.api.flow import Answer
from backends.core.persistence.log_notes import LogNotes
from backends.fastapi_service.body import read_body
from backends.fastapi_service.resources import Resources
from shared_schemas.operations import OPERATIONS, Operation

Endpoint = Callable[[Request], Awaitable[Response]]


def install_routes(app: FastAPI) -> None:
    """One route per operation, as plain Starlette routes of the FastAPI app.

    Not ``add_api_route``: these endpoints declare no parameters (the shared models
    validate the body), yet FastAPI's route would solve an empty dependency graph and
    build a spare Response on every request: 23% of a /live request's CPU, profiled.
    The app, its middleware, exception handlers and lifespan stay FastAPI's.
    """
    for operation in OPERATIONS:
        app.router.add_route(
            operation.path,
            _endpoint_for(operation),
            methods=[operation.method],
            name=operation.operation_id,
            include_in_schema=False,
        )


def _endpoint_for(operation: Operation) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        resources: Resources = request.app.state.resources
        notes: LogNotes = request.state.ml_notes
        flow = resources.flow
        settings = resources.settings
        body = await read_body(request, operation, settings.max_body_bytes, settings.body_timeout_s)
        prepared = flow.prepare(operation, body, request.path_params, notes)
        result: ApiResult
        if operation.readiness:
            result = await resources.readiness()
        elif prepared.cache_key is not None and (
            cached := await resources.cache.get(prepared.cache_key)
        ):
            return _response(flow.cached(cached))
        elif operation.inline:  # constant-time: a thread hop would cost more than the work
            result = flow.run(prepared.api_request)
        else:
            result = await anyio.to_thread.run_sync(
                flow.run, prepared.api_request, limiter=resources.engine_limiter
            )
        answer = flow.finish(prepared, result, notes)
        if (entry := answer.cache_entry) is not None:
            await resources.cache.put(entry.key, entry.request_hash, entry.endpoint, entry.body)
        return _response(answer)

    endpoint.__name__ = operation.operation_id
    return endpoint


def _response(answer: Answer) -> Response:
    headers = {"X-Cache": answer.x_cache} if answer.x_cache else None
    return Response(answer.content, media_type=answer.media_type, headers=headers)
