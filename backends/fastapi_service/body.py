"""Read request bodies with a size cap, a silence timeout and media type checks.

413 over the cap, 415 for the wrong media type, 408 when the client stays silent longer
than the body timeout, 400 when the body ends early: granian reports broken chunked
framing (a bad chunk size, a missing CRLF) as a disconnect, like a client that closes
mid-body, and the answer to either is a 400, not the 500 of an unhandled ClientDisconnect.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive

from backends.core.api.body_checks import (
    check_declared_length,
    require_json,
    require_multipart,
    too_large,
)
from backends.core.api.flow import FormBody, RequestBody
from backends.core.api.limits import MAX_FIELD_BYTES, MAX_FIELDS, MAX_FILES
from backends.core.errors import BadRequest, MLServiceError, PayloadTooLarge, RequestTimeout
from shared_schemas.operations import JSON, Operation

ENDED_EARLY = "The request body ended before it was complete (or its chunked framing is broken)"


class BodyDeadlines:
    """The body timeout of every request reading its body, on one timer for them all.

    A per-request ``asyncio.timeout`` starts and cancels a loop timer for each body, ~4 us
    of event-loop CPU for a cached answer whose body arrives in one message. Here a body
    read only records its task and deadline; one timer, armed for the earliest deadline,
    cancels the tasks whose clients stayed silent (``receive_capped`` turns that into a 408).
    One timeout for all: the deadlines are in insertion order, the earliest first.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one the bodies are read in

    def current(self) -> tuple[asyncio.Task[Any], asyncio.AbstractEventLoop]:
        """The running task and its loop, without ``asyncio.get_running_loop`` each time.

        On Python 3.11 that checks the process id: a getpid system call per call, two per
        body read with ``current_task()`` (~3% of a cached answer's event-loop samples,
        py-spy --native). The loop of the last read is asked for its current task first;
        only when it has none (another loop runs now) is the running loop looked up.
        """
        loop = self._loop
        task = asyncio.current_task(loop) if loop is not None else None
        if task is None or loop is None:
            loop = self._loop = asyncio.get_running_loop()
            task = asyncio.current_task(loop)
            assert task is not None  # an ASGI app runs in a task
        return task, loop

    def start(self, task: asyncio.Task[Any], loop: asyncio.AbstractEventLoop) -> None:
        """``task`` must hear from its client within ``timeout_s`` (again, when called again)."""
        waiting = self._waiting
        waiting.pop(task, None)  # re-inserted last: the latest deadline
        waiting[task] = loop.time() + self.timeout_s
        if self._timer is None:
            self._timer = loop.call_at(waiting[task], self._expire, loop)

    def stop(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task``'s deadline expired (and cancelled it); it has none any more."""
        self._waiting.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            task.uncancel()
            return True
        return False

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        waiting = self._waiting
        while waiting:
            task, deadline = next(iter(waiting.items()))
            if deadline > now:
                self._timer = loop.call_at(deadline, self._expire, loop)
                return
            del waiting[task]
            self._expired.add(task)
            task.cancel()


async def read_body(
    request: Request, operation: Operation, max_bytes: int, deadlines: BodyDeadlines
) -> RequestBody:
    """What ``RequestFlow.prepare`` validates: raw JSON bytes, the form, or None.

    Each piece of the body must arrive within ``deadlines.timeout_s`` of the previous one.
    """
    if operation.request_model is None:
        return None
    if operation.request_content_type == JSON:
        content_type, content_length = json_headers(request.scope["headers"])
        require_json(content_type)
        check_declared_length(content_length, max_bytes)
        return await receive_capped(request.receive, max_bytes, deadlines)
    bounded = Request(request.scope, _within(request.receive, deadlines.timeout_s))
    try:
        return await read_form(bounded, max_bytes)
    except ClientDisconnect:
        raise BadRequest(ENDED_EARLY) from None


def json_headers(raw: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """Content-Type and Content-Length of a request (the first of each, as Starlette's
    ``Headers.get``), in one pass over the ASGI list (lower-case names): a ``Headers``
    object and two lookups cost ~1.5 us more of a cached answer's event loop (timeit)."""
    content_type = content_length = None
    for name, value in raw:
        if name == b"content-type":
            if content_type is None:
                content_type = value.decode("latin-1")
        elif name == b"content-length" and content_length is None:
            content_length = value.decode("latin-1")
    return content_type, content_length


async def receive_capped(receive: Receive, max_bytes: int, deadlines: BodyDeadlines) -> bytes:
    """The whole body from ASGI ``receive``: at most ``max_bytes``, each piece within
    ``deadlines.timeout_s`` of the previous one.

    Straight from ``receive``: a JSON body is usually one message, and a Starlette
    ``Request`` with an anyio cancel scope per message cost a cached answer ~15 us of CPU
    (py-spy).
    """
    task, loop = deadlines.current()
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            deadlines.start(task, loop)
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: it ended early
                raise BadRequest(ENDED_EARLY)
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise too_large(max_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
    except asyncio.CancelledError:
        if deadlines.stop(task):
            raise RequestTimeout(
                f"request body not received within {deadlines.timeout_s:g} s"
            ) from None
        raise
    finally:
        # The timer runs only while this task waits in ``receive``: a body that arrived
        # was never cancelled for its deadline
        deadlines.stop(task)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _within(receive: Receive, timeout_s: float) -> Receive:
    """``receive`` that raises RequestTimeout when the client is silent for ``timeout_s``."""

    async def receive_within() -> Message:
        try:
            with anyio.fail_after(timeout_s):
                return await receive()
        except TimeoutError:
            raise RequestTimeout(f"request body not received within {timeout_s:g} s") from None

    return receive_within


async def read_form(request: Request, max_bytes: int) -> FormBody:
    """Multipart fields (uploaded files become bytes, other parts strings) and file names."""
    require_multipart(request.headers.get("content-type"))
    check_declared_length(request.headers.get("content-length"), max_bytes)
    try:
        form = await request.form(
            max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES
        )
    except (MLServiceError, ClientDisconnect):
        raise
    except Exception as exc:  # python-multipart raises several types for broken framing
        raise BadRequest(f"Malformed multipart body: {exc}") from None
    fields: dict[str, Any] = {}
    filenames: dict[str, str] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(max_bytes + 1)
                if len(data) > max_bytes:
                    raise PayloadTooLarge(f"Uploaded file exceeds {max_bytes} bytes")
                fields[name] = data
                filenames[name] = value.filename or ""
            else:
                fields[name] = value
    finally:
        await form.close()
    return FormBody(fields, filenames)
