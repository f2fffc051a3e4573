"""The streaming forwarder: one ASGI request -> one upstream request, bodies streamed both ways."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import NamedTuple, TypeVar

from starlette.types import Message, Receive, Scope, Send

from gateway.errors import GatewayError, UpstreamFailure, classify, send_error
from gateway.headers import Incoming, media_type, response_headers
from gateway.metrics import GatewayMetrics
from gateway.registry import Backend, BackendRegistry
from gateway.settings import GatewaySettings
from gateway.upstream import Timeouts, Upstream, UpstreamResponse
from shared_schemas.operations import may_repeat

log = logging.getLogger("gateway.proxy")
RETRY_STATUSES = frozenset({502, 503})
T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away before its request body was complete."""


async def receive_within(receive: Receive, timeout_s: float) -> Message:
    """The next ASGI message of the request; 408 when the client stays silent too long."""
    try:
        async with asyncio.timeout(timeout_s):
            message = await receive()
    except TimeoutError:
        # the rest of the body may still come: the connection cannot carry another request
        raise GatewayError(
            408, "request body not received in time", headers=((b"connection", b"close"),)
        ) from None
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    return message


class _StreamedBody:
    """The rest of an ASGI request body, passed upstream chunk by chunk (never held whole)."""

    def __init__(self, first: bytes, receive: Receive, limit: int, timeout_s: float) -> None:
        self._first = first
        self._receive = receive
        self._limit = limit
        self._timeout_s = timeout_s

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = len(self._first)
        if self._first:
            yield self._first
        while True:
            message = await receive_within(self._receive, self._timeout_s)
            chunk: bytes = message.get("body", b"")
            seen += len(chunk)
            if seen > self._limit:
                raise GatewayError(413, "request body too large")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


class Outcome(NamedTuple):
    status: int
    backend: str
    # Kept only when the caller asked to capture (shadow mode) and both bodies were small:
    # references to bytes the forwarder held anyway, never copies.
    request_body: bytes | None = None
    response_body: bytes | None = None
    media_type: str = ""


class Forwarder:
    """Sends requests to the selected backend (or the fallback) over one pooled transport."""

    def __init__(
        self,
        upstream: Upstream,
        registry: BackendRegistry,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
    ) -> None:
        self.upstream = upstream
        self.registry = registry
        self.metrics = metrics
        self._limit = settings.max_body_bytes
        self._settings = settings
        self._timeouts: dict[str, Timeouts] = {}

    def _timeout(self, group: str) -> Timeouts:
        """Timeouts of a route group (built once per group)."""
        timeouts = self._timeouts.get(group)
        if timeouts is None:
            timeouts = Timeouts(self._settings.connect_timeout_s, self._settings.timeout_for(group))
            self._timeouts[group] = timeouts
        return timeouts

    @staticmethod
    def _url(backend: Backend, scope: Scope) -> str:
        raw_path: bytes | None = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        query: bytes = scope["query_string"]
        return backend.base_url + path + ("?" + query.decode("latin-1") if query else "")

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        incoming: Incoming,
        group: str,
        capture: int = 0,
    ) -> Outcome:
        """Proxy one request; answers the error shape itself on 408/413/502/504.

        ``capture`` > 0: the outcome keeps the request body and a response body of at most
        that many bytes (for the shadow mode's comparison).
        """
        # A request without a body is whole already: nothing to read or time out on.
        body = b"" if incoming.bodyless else await self._read_body(receive)
        # A body read whole is replayable; a streamed one is sent exactly once.
        replayable = isinstance(body, bytes)
        method: str = scope["method"]
        repeatable = may_repeat(method, scope["path"])
        fallback = self.registry.fallback
        backend = self.registry.selected
        timeouts = self._timeout(group)
        while True:
            try:
                response = await self.upstream.send(
                    method,
                    self._url(backend, scope),
                    incoming.headers,
                    body,
                    timeouts,
                    repeatable=repeatable,
                )
            except (GatewayError, ClientDisconnected):
                raise  # raised by the request body (413, client gone); upstreams pass them on
            except Exception as exc:
                failure = classify(exc, backend.name)
                if failure is None:  # a bug or an unforeseen client error: still the one shape
                    log.exception("request to backend %r failed", backend.name)
                    failure = UpstreamFailure(502, "protocol", f"backend {backend.name!r} failed")
                self.metrics.upstream_error(backend.name, group, failure.kind)
                if (
                    fallback is not None
                    and replayable
                    and _retry_after_failure(failure, repeatable)
                ):
                    backend, fallback = fallback, None
                    continue
                await _send_failure(send, failure, incoming, backend)
                return Outcome(failure.status, backend.name)
            if (
                fallback is not None
                and replayable
                and response.status in RETRY_STATUSES
                and repeatable
            ):
                await response.aclose()
                self.metrics.upstream_error(backend.name, group, f"status_{response.status}")
                backend, fallback = fallback, None
                continue
            relay = self._relay(response, send, incoming, backend, group, capture)
            if _is_event_stream(response.headers):
                # the generation behind it may run on for minutes: stop when the client goes
                outcome = await until_disconnected(receive, relay)
                return outcome or Outcome(response.status, backend.name)
            outcome = await relay
            if capture and isinstance(body, bytes) and outcome.response_body is not None:
                return outcome._replace(request_body=body)
            return outcome

    async def _read_body(self, receive: Receive) -> bytes | _StreamedBody:
        """The whole body when it fits the buffer, else its start and a stream of the rest."""
        timeout_s = self._settings.body_timeout_s
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive_within(receive, timeout_s)
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                raise GatewayError(413, "request body too large")
            parts.append(chunk)
            if not message.get("more_body", False):
                return parts[0] if len(parts) == 1 else b"".join(parts)
            if size > self._settings.buffer_body_bytes:
                return _StreamedBody(b"".join(parts), receive, self._limit, timeout_s)

    @staticmethod
    def _start(response: UpstreamResponse, incoming: Incoming, backend: Backend) -> Message:
        headers = response_headers(
            response.headers, incoming.request_id.encode("ascii"), backend.header_value
        )
        return {"type": "http.response.start", "status": response.status, "headers": headers}

    async def _relay(
        self,
        response: UpstreamResponse,
        send: Send,
        incoming: Incoming,
        backend: Backend,
        group: str,
        capture: int = 0,
    ) -> Outcome:
        """Stream the upstream response to the client, each chunk as it arrives."""
        try:
            if response.status >= 400 and not _is_json(response.headers):
                # an error the backend's server wrote itself (431 empty from granian, HTML
                # from gunicorn): the client gets the one error shape, with the same status
                message = f"backend {backend.name!r} refused the request (HTTP {response.status})"
                plain = UpstreamFailure(response.status, "protocol", message)
                await _send_failure(send, plain, incoming, backend)
                return Outcome(response.status, backend.name)
            whole = response.complete_body()
            if whole is not None:  # the common small answer: two messages, no streaming loop
                await send(self._start(response, incoming, backend))
                await send({"type": "http.response.body", "body": whole})
                if capture and len(whole) <= capture:
                    return _captured(response, backend, whole)
                return Outcome(response.status, backend.name)
            chunks = response.chunks()
            try:
                pending: bytes | None = await chunks.__anext__()
            except StopAsyncIteration:
                pending = None
            except Exception as exc:
                failure = classify(exc, backend.name)
                if failure is None:
                    raise
                self.metrics.upstream_error(backend.name, group, failure.kind)
                await _send_failure(send, failure, incoming, backend)
                return Outcome(failure.status, backend.name)
            await send(self._start(response, incoming, backend))
            kept = _Capture(capture)
            if pending is not None:
                # Each chunk is passed on as it arrives, none held back to mark the end:
                # an event stream's token must not wait for the next one (or the last).
                await send({"type": "http.response.body", "body": pending, "more_body": True})
                kept.add(pending)
                try:
                    async for chunk in chunks:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                        kept.add(chunk)
                except Exception as exc:
                    if classify(exc, backend.name) is None:
                        raise
                    # The status line is gone: leave the body unfinished so the server
                    # drops the connection and the client sees a truncated response.
                    self.metrics.upstream_error(backend.name, group, "protocol")
                    log.warning("backend %r failed mid-response: %r", backend.name, exc)
                    return Outcome(response.status, backend.name)
            await send({"type": "http.response.body", "body": b""})
            if (captured := kept.body()) is not None:
                return _captured(response, backend, captured)
            return Outcome(response.status, backend.name)
        finally:
            await response.aclose()


class _Capture:
    """A streamed answer's chunks for the shadow comparison, dropped once past ``limit``
    bytes (a limit of 0 keeps nothing)."""

    __slots__ = ("_limit", "_parts", "_size")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: list[bytes] | None = [] if limit else None
        self._size = 0

    def add(self, chunk: bytes) -> None:
        if self._parts is None:
            return
        self._size += len(chunk)
        if self._size <= self._limit:
            self._parts.append(chunk)
        else:
            self._parts = None

    def body(self) -> bytes | None:
        return b"".join(self._parts) if self._parts is not None else None


def _captured(response: UpstreamResponse, backend: Backend, body: bytes) -> Outcome:
    media = media_type(response.headers).decode("latin-1")
    return Outcome(response.status, backend.name, None, body, media)


async def until_disconnected(receive: Receive, relay: Awaitable[T]) -> T | None:
    """``relay``'s result, or None once the client went away first (the relay is cancelled,
    so its cleanup closes the backend connection and the backend stops).

    uvicorn drops what is sent after a disconnect without telling the sender; only
    ``receive`` says so. Its request body must already be read.
    """
    relaying = asyncio.ensure_future(relay)
    gone = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait((relaying, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (gone, relaying):
            if not task.done():
                task.cancel()
        await asyncio.gather(relaying, gone, return_exceptions=True)
    return relaying.result() if not relaying.cancelled() else None


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _is_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    media = media_type(headers)
    return media == b"application/json" or media.endswith(b"+json")


def _is_event_stream(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return media_type(headers) == b"text/event-stream"


def _retry_after_failure(failure: UpstreamFailure, repeatable: bool) -> bool:
    # A refused connection reached nobody: any replayable request may go to the fallback.
    # A dropped connection may have been processed: only repeatable requests go again.
    return failure.kind == "connect" or (failure.kind == "protocol" and repeatable)


async def _send_failure(
    send: Send, failure: UpstreamFailure, incoming: Incoming, backend: Backend
) -> None:
    await send_error(
        send,
        failure.status,
        failure.message,
        incoming.request_id,
        headers=(
            (b"x-request-id", incoming.request_id.encode()),
            (b"x-ml-backend", backend.header_value),
        ),
    )
