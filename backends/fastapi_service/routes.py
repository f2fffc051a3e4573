"""One generic endpoint per contract operation, all built from shared_schemas.operations.

The endpoint only does I/O around ``backends.core.api.flow.RequestFlow``: read the body,
await the cache, run the handler on the event loop or in a worker thread, respond.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import CancelledError

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from backends.core.api.api_request import ApiRequest, ApiResult
from backends.core.api.event_stream import EVENT_STREAM_HEADERS
from backends.core.api.flow import Answer
from backends.core.api.metrics_page import server_timing
from backends.core.inference.timing import CLIENT_CLOSED, RequestTiming, collect_timing
from backends.core.persistence.log_notes import LogNotes
from backends.fastapi_service.body import read_body
from backends.fastapi_service.resources import Resources
from shared_schemas.generation import EVENT_STREAM_MEDIA_TYPE
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
        started = time.perf_counter()
        resources: Resources = request.app.state.resources
        state = request.scope["state"]  # the middleware's; request.state would wrap it anew
        notes: LogNotes = state["ml_notes"]
        flow = resources.flow
        settings = resources.settings
        body = await read_body(
            request, operation, settings.max_body_bytes, resources.body_deadlines
        )
        prepared = flow.prepare(operation, body, request.path_params, notes)
        result: ApiResult
        if prepared.cache_key is not None:
            cached = await resources.cache.get(prepared.cache_key)
            resources.metrics.cache_lookup(hit=bool(cached))
            if cached:
                return _response(flow.cached(prepared, cached, notes))
        # The worker thread runs in a copy of this context: the same collector.
        with collect_timing() as timing:
            if operation.readiness:
                result = await resources.readiness()
            elif operation.inline:  # constant-time: a thread hop would cost more than the work
                result = flow.run(prepared.api_request)
            else:
                ran = await _run_while_connected(request, resources, prepared.api_request, timing)
                if ran is None:
                    return Response(status_code=CLIENT_CLOSED)  # nobody is left to read it
                result = ran
        answer = flow.finish(prepared, result, notes)
        if answer.stream is not None:
            return EventStreamResponse(answer.stream.encoded(state["request_id"]))
        if (entry := answer.cache_entry) is not None:
            await resources.cache.put(entry.key, entry.request_hash, entry.endpoint, entry.body)
        return _response(answer, server_timing(timing, time.perf_counter() - started))

    endpoint.__name__ = operation.operation_id
    return endpoint


async def _run_while_connected(
    request: Request, resources: Resources, api_request: ApiRequest, timing: RequestTiming
) -> ApiResult | None:
    """The handler's result; None when the client went away first.

    Awaited on the event loop when all the handler does is await the inference runtime
    (``flow.awaitable``: embeddings on the local model), so the runtime's queue alone
    bounds those requests; otherwise in an engine thread, which a request waits for only
    while there is room (``admit_to_thread``).

    A disconnect abandons the request's model calls: those still waiting leave their
    queue, so a batch never computes an answer nobody reads, and the thread stops at its
    next model call. Only the ASGI receive channel says a client left (the server sends
    http.disconnect after the body), hence one small watcher task per request.
    """
    awaitable = resources.flow.awaitable(api_request)
    if awaitable is None:
        resources.admit_to_thread()
    left = False

    async def watch() -> None:
        nonlocal left
        while (await request.receive())["type"] != "http.disconnect":
            pass
        left = True
        timing.abandon()

    watcher = asyncio.ensure_future(watch())
    try:
        if awaitable is not None:
            return await awaitable
        return await anyio.to_thread.run_sync(
            resources.flow.run, api_request, limiter=resources.engine_limiter
        )
    except (CancelledError, asyncio.CancelledError):
        if left:
            return None
        raise
    finally:
        watcher.cancel()


class EventStreamResponse(Response):
    """Server-sent events read from a blocking iterator, one worker-thread hop per event.

    Never on the event loop: each event waits for the model. The iterator is closed however
    the response ends (finished, failed, or cancelled because the client went away), which
    stops the generation behind it; the request's log row is written after that.
    """

    media_type = EVENT_STREAM_MEDIA_TYPE

    def __init__(self, events: Iterator[bytes]) -> None:
        # as StreamingResponse does: no body set, so no Content-Length (the server chunks)
        self.status_code = 200
        self.background = None
        self.init_headers(EVENT_STREAM_HEADERS)
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:
                # granian drops what is sent after a disconnect without telling the sender;
                # only ``receive`` says the client went away
                group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
                await self._send_events(send)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_close, self._events)

    async def _send_events(self, send: Send) -> None:
        events = self._events
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        # the default thread limiter, not the engine's: a stream waiting for its next token
        # must not hold one of the few engine slots the other requests need
        while (event := await anyio.to_thread.run_sync(next, events, None)) is not None:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def _close(events: Iterator[bytes]) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()


def _response(answer: Answer, timing: str | None = None) -> Response:
    headers = {}
    if answer.x_cache:
        headers["X-Cache"] = answer.x_cache
    if timing is not None:
        headers["Server-Timing"] = timing
    return Response(answer.content, media_type=answer.media_type, headers=headers or None)
