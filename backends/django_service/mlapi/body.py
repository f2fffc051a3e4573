"""Read request bodies with a size cap, a silence timeout and media type checks.

413 over the cap, 415 for the wrong media type, 408 when the client stays silent longer
than the body timeout, 400 when the body ends early or its chunked framing is broken.
Django's own body handling is bypassed where it would answer differently from the
contract: DRF parsers never run, a declared length over the cap is our 413 before a byte
is read, and chunked bodies (no Content-Length, which Django would read as empty) are
buffered here first.

The timeout is set on gunicorn's client socket (a sync worker has no other way to stop
waiting for a client): without it a chunk size of 2**72 followed by silence held a worker
until gunicorn's worker timeout (300 s) killed it. A body gunicorn already holds whole
(it came in with the headers, as small JSON bodies do) is read without one: setting the
timeout and restoring it are two ``ioctl`` calls, each giving up the GIL, for a read
that waits on no socket.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from io import BytesIO

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, UnreadablePostError
from gunicorn.http.body import LengthReader
from gunicorn.http.errors import ParseException

from backends.core.api.body_checks import (
    check_declared_length,
    require_json,
    require_multipart,
    too_large,
)
from backends.core.api.flow import FormBody, RequestBody
from backends.core.errors import BadRequest, RequestTimeout
from backends.django_service.mlapi.multipart_form import parse_multipart
from shared_schemas.operations import JSON, Operation


def read_body(
    request: HttpRequest, operation: Operation, max_bytes: int, timeout_s: float
) -> RequestBody:
    """What ``RequestFlow.prepare`` validates: raw JSON bytes, the form, or None.

    Each piece of the body must arrive within ``timeout_s`` of the previous one.
    """
    if operation.request_model is None:
        return None
    with _reading(request, timeout_s):
        if operation.request_content_type == JSON:
            return read_json_body(request, max_bytes)
        return read_form(request, max_bytes)


def read_json_body(request: HttpRequest, max_bytes: int) -> bytes:
    """The raw body of a JSON operation; a missing Content-Type is read as JSON."""
    require_json(request.META.get("CONTENT_TYPE"))
    _check_size(request, max_bytes)
    try:
        return request.body
    except RequestDataTooBig:
        raise too_large(max_bytes) from None


def read_form(request: HttpRequest, max_bytes: int) -> FormBody:
    """Multipart fields (uploaded files become bytes, other parts strings) and file names.

    The body is capped by its declared length (checked first), so parts stay in memory.
    """
    require_multipart(request.META.get("CONTENT_TYPE"))
    _check_size(request, max_bytes)
    fields, filenames = parse_multipart(str(request.META.get("CONTENT_TYPE", "")), _chunks(request))
    return FormBody(fields, filenames)


@contextlib.contextmanager
def _reading(request: HttpRequest, timeout_s: float) -> Iterator[None]:
    """While the body is read: the client socket times out, read failures are 400 / 408."""
    found = request.META.get("gunicorn.socket")  # absent under other servers (tests)
    waits = isinstance(found, socket.socket) and not held_whole(request.META.get("wsgi.input"))
    sock = found if waits else None
    prior = sock.gettimeout() if sock is not None else None
    if sock is not None:
        sock.settimeout(timeout_s)
    try:
        yield
    # Django wraps socket errors in UnreadablePostError; gunicorn's chunked reader raises
    # ParseException subclasses (bad chunk size, missing CRLF) and NoMoreData (an OSError)
    except (UnreadablePostError, OSError, ParseException) as exc:
        if _timed_out(exc):
            raise RequestTimeout(f"request body not received within {timeout_s:g} s") from None
        raise BadRequest(f"Could not read the request body: {exc}") from None
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(prior)


def held_whole(stream: object) -> bool:
    """Whether gunicorn's request body ``stream`` (``wsgi.input``) has every byte of a
    body of declared length buffered already, so reading it touches no socket."""
    reader = getattr(stream, "reader", None)
    if not isinstance(reader, LengthReader):
        return False  # chunked, or not gunicorn's
    with reader.unreader.buf.getbuffer() as held:
        return bool(held.nbytes >= reader.length)


def _timed_out(exc: BaseException | None) -> bool:
    """A socket timeout, possibly under Django's UnreadablePostError (wrapped twice by
    ``request.body``)."""
    while exc is not None:
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__
    return False


def _chunks(request: HttpRequest, size: int = 256 * 1024) -> Iterator[bytes]:
    while chunk := request.read(size):
        yield chunk


def _check_size(request: HttpRequest, max_bytes: int) -> None:
    declared = str(request.META.get("CONTENT_LENGTH") or "")
    check_declared_length(declared, max_bytes)
    if not declared and "chunked" in str(request.META.get("HTTP_TRANSFER_ENCODING", "")).lower():
        _buffer_chunked(request, max_bytes)


def _buffer_chunked(request: HttpRequest, max_bytes: int) -> None:
    """Read a chunked body (capped) so Django's body and multipart parsing see all of it."""
    stream = request.META.get("wsgi.input")
    if stream is None or hasattr(request, "_body"):
        return
    body = stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise too_large(max_bytes)
    request._body = body  # what request.body returns from now on
    request._stream = BytesIO(body)  # what request.read() reads
    request.META["CONTENT_LENGTH"] = str(len(body))
