"""The proxy's hot path: a small pooled HTTP/1.1 client on asyncio protocols and httptools.

Why not aiohttp: on this machine kind a proxied trivial GET cost the gateway ~330 us of CPU
on aiohttp's client against ~135 us for answering /health itself, so the client was most of
the gateway's cost and the gateway fell below 80% of direct throughput. A proxy needs far
less than a general client: no cookies, redirects, decoding or URL handling, only "write
these bytes, parse the answer with llhttp (httptools, already under uvicorn), hand the body
on as it arrives". ``bench.gateway`` measures the difference (see gateway/README.md).

Failures are raised as exceptions that ``gateway.errors.classify`` maps: ``ConnectFailed``
(nothing reached the backend) -> 502, ``ConnectTimeout`` and ``TimeoutError`` -> 504,
``BackendClosed`` and any other ``OSError`` (dropped, reset, malformed) -> 502. Exceptions
raised by a streamed request body (413, client gone) pass through unchanged.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

from gateway.upstream import Body, RawHeaders, Timeouts
from shared_schemas.operations import IDEMPOTENT_METHODS

_BODYLESS = frozenset({b"GET", b"HEAD", b"DELETE", b"OPTIONS", b"TRACE"})
Origin = tuple[str, str, int]  # scheme, host, port
# Responses up to this size (by Content-Length) are handed on whole, not head first.
_SMALL_BODY = 64 * 1024
# Stop reading from the backend while this much response body waits for a slow client.
_HIGH_WATER = 256 * 1024


class ConnectTimeout(TimeoutError):
    """The backend did not accept the connection in time."""


class ConnectFailed(ConnectionError):
    """No connection could be made (refused, unresolvable, TLS failed): nothing was sent."""


class BackendClosed(ConnectionError):
    """The backend closed or broke the connection before its response was complete."""


class _SurplusBytes(Exception):
    """Bytes after the end of the response: raised in a parser callback to stop parsing."""


def _expire(waiter: asyncio.Future[None], message: str) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError(message))


class _Connection(asyncio.Protocol):
    """One TCP connection: one request at a time, its response parsed as the bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        self._loop = loop
        self.origin = origin
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self.closed = False
        self.paused = False
        self.idle_since = 0.0
        self.start(b"GET")
        self.active = False

    def start(self, method: bytes) -> None:
        """Forget the previous exchange; ``method`` decides whether a body may follow."""
        self.active = True
        self.request_finished = True
        self.method = method
        self.status = 0
        self.headers: RawHeaders = []
        self.head_done = False
        self.keep_alive = False
        self.complete = False
        self.received_any = False
        self.framed = False  # content-length or chunked: the end is known without EOF
        # A short body arrives right behind its head: waking the reader once, when the
        # whole response is in, saves an event-loop round per request.
        self.small = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        # a response left unread (the client went away) must not leave the socket paused
        self._resume()
        self.error: BaseException | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active:  # bytes on an idle connection: the stream cannot be trusted
            self.close()
            return
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _SurplusBytes):
                # The answer is whole; what follows it is not ours to relay (a second
                # response would merge its headers into this one) and leaves the stream
                # out of step, so the connection is dropped, never reused.
                self.close()
                return
            self._fail(BackendClosed(f"malformed response from the backend: {exc}"))
            return
        if self.buffered > _HIGH_WATER and not self.paused and self._transport is not None:
            self.paused = True
            self._transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.head_done and not self.complete and not self.framed and exc is None:
            self.complete = True  # a body delimited by the end of the connection
            self._wake()
        elif not self.complete:
            self._fail(BackendClosed("the backend closed the connection"))
        self._release_writer()

    def pause_writing(self) -> None:
        self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        self._release_writer()
        self._writable = None

    def _release_writer(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.complete:  # llhttp would parse the bytes after the answer as a new message
            raise _SurplusBytes

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"content-length":
            self.framed = True
            self.small = value.isdigit() and int(value) <= _SMALL_BODY
        elif lower == b"transfer-encoding" and b"chunked" in value:
            self.framed = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            self.headers, self.framed, self.small = [], False, False
            return
        self.status, self.head_done = status, True
        # llhttp knows this only until the message ends (Connection: close, HTTP/1.0).
        self.keep_alive = self._parser.should_keep_alive()
        if self.method == b"HEAD":  # llhttp cannot be told; the connection is not reused
            self.complete = True
        if not self.small or self.complete:
            self._wake()
        # An answer before the upload is done (413, 401...): a backend that stopped reading
        # must not keep the uploader waiting for buffer space until the read timeout.
        self._release_writer()

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.chunks.append(body)
            self.buffered += len(body)
            if not self.small:
                self._wake()

    def on_message_complete(self) -> None:
        if self.head_done:
            self.complete = True
            self._wake()

    # used by the pool and the response
    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    async def wait(self, timeout_s: float, message: str) -> None:
        """Until more of the response arrived (or it failed), at most ``timeout_s`` seconds."""
        if self.error is not None:
            raise self.error
        self._waiter = waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout_s, _expire, waiter, message)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def write(self, data: bytes) -> None:
        if self.closed or self._transport is None:
            raise self.error or BackendClosed("the backend closed the connection")
        self._transport.write(data)

    async def drain(self, timeout_s: float) -> None:
        """Wait while the socket's send buffer is full (a backend that reads slowly)."""
        writable = self._writable
        if writable is not None and not writable.done():
            timer = self._loop.call_later(timeout_s, _expire, writable, "backend stopped reading")
            try:
                await writable
            finally:
                timer.cancel()

    def take(self) -> bytes:
        data = b"".join(self.chunks) if len(self.chunks) > 1 else self.chunks.popleft()
        self.chunks.clear()
        self.buffered = 0
        self._resume()
        return data

    def _resume(self) -> None:
        if self.paused and self._transport is not None and not self.closed:
            self.paused = False
            self._transport.resume_reading()

    def reusable(self) -> bool:
        return (
            self.complete
            and self.request_finished
            and not self.closed
            and self.method != b"HEAD"
            and self.keep_alive
        )

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class Http1Response:
    """A backend's answer: status and headers read, the body handed on as it arrives."""

    __slots__ = ("_connection", "_pool", "_read_timeout", "headers", "status")

    def __init__(self, connection: _Connection, pool: Http1Upstream, read_timeout: float) -> None:
        self._connection = connection
        self._pool = pool
        self._read_timeout = read_timeout
        self.status = connection.status
        self.headers = connection.headers

    def complete_body(self) -> bytes | None:
        """The whole body when it is already in (a small response), else None."""
        connection = self._connection
        if not connection.complete:
            return None
        return connection.take() if connection.chunks else b""

    async def chunks(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while True:
            if connection.chunks:
                yield connection.take()
            elif connection.complete:
                return
            else:
                await connection.wait(self._read_timeout, "backend stopped sending")

    async def aclose(self) -> None:
        if self._connection.active:
            self._pool.release(self._connection)


class _Slots:
    """At most ``size`` exchanges at once; a freed slot goes straight to the oldest waiter.

    asyncio.Semaphore does the same, but each wait asks ``get_running_loop`` for the loop,
    a getpid() system call on Python 3.11, and a release wakes a waiter that then takes
    the slot again: at 1,000 clients over 512 connections half the requests wait.
    """

    __slots__ = ("_free", "_loop", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def acquire(self) -> None:
        if self._free:  # free slots only when nobody waits (release hands them over)
            self._free -= 1
            return
        loop = self._loop = self._loop or asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot as it was cancelled: the next one gets it
            raise

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(None)
                return
        self._free += 1


class Http1Upstream:
    """Keeps idle connections per backend origin; one request per connection at a time."""

    def __init__(self, pool_size: int, keepalive_s: float) -> None:
        self._keepalive_s = keepalive_s
        self._slots = _Slots(pool_size)
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._origins: dict[str, tuple[Origin, bytes]] = {}
        self._ssl: ssl.SSLContext | None = None

    def _split(self, url: str) -> tuple[Origin, bytes, bytes]:
        """(scheme, host, port), the Host header value and the request target of ``url``."""
        scheme, _, rest = url.partition("://")
        netloc, slash, target = rest.partition("/")
        cached = self._origins.get(scheme + netloc)
        if cached is None:
            parts = urlsplit(url)
            default = 443 if scheme == "https" else 80
            origin = (scheme, parts.hostname or "", parts.port or default)
            cached = self._origins[scheme + netloc] = (origin, netloc.encode("latin-1"))
        return cached[0], cached[1], (slash + target or "/").encode("latin-1")

    async def _connect(self, origin: Origin, timeout_s: float) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            context = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, origin), host, port, ssl=context
                )
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {host}:{port} within {timeout_s} s") from None
        except OSError as exc:  # one address or several ("Multiple exceptions: ...")
            raise ConnectFailed(f"cannot connect to {host}:{port}: {exc}") from exc
        return connection

    def _pooled(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be closed
            if not connection.closed and now - connection.idle_since < self._keepalive_s:
                return connection
            connection.close()
        return None

    async def send(
        self,
        method: str,
        url: str,
        headers: RawHeaders,
        body: Body,
        timeouts: Timeouts,
        *,
        repeatable: bool = False,
    ) -> Http1Response:
        origin, host, target = self._split(url)
        verb = method.encode("ascii")
        head = [verb + b" " + target + b" HTTP/1.1\r\nhost: " + host]
        known_length = False
        for name, value in headers:
            known_length = known_length or name == b"content-length"
            head.append(name + b": " + value)
        chunked = False
        if isinstance(body, bytes):
            if not known_length and (body or verb not in _BODYLESS):
                head.append(b"content-length: " + str(len(body)).encode())
        elif not known_length:
            chunked = True
            head.append(b"transfer-encoding: chunked")
        request_head = b"\r\n".join(head) + b"\r\n\r\n"

        await self._slots.acquire()
        try:
            connection = self._pooled(origin)
            reused = connection is not None
            while True:
                if connection is None:
                    connection = await self._connect(origin, timeouts.connect)
                try:
                    connection.start(verb)
                    await self._exchange(connection, request_head, body, chunked, timeouts)
                    return Http1Response(connection, self, timeouts.read)
                except BackendClosed:
                    connection.close()
                    # A pooled connection the backend had just closed: nothing was answered,
                    # so an idempotent or repeatable request goes once more on a fresh one.
                    again = repeatable or method in IDEMPOTENT_METHODS
                    if reused and not connection.received_any and again:
                        connection, reused = None, False
                        continue
                    raise
                except BaseException:
                    connection.close()
                    raise
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(
        self,
        connection: _Connection,
        request_head: bytes,
        body: Body,
        chunked: bool,
        timeouts: Timeouts,
    ) -> None:
        """Write the request, then wait for the response head."""
        if isinstance(body, bytes):
            connection.write(request_head + body)
        else:
            connection.write(request_head)
            async for chunk in body:
                if connection.head_done:
                    # The backend answered early (an error): the rest is not wanted, and the
                    # connection cannot carry another request.
                    connection.request_finished = False
                    break
                connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                await connection.drain(timeouts.read)
            else:
                if chunked:
                    connection.write(b"0\r\n\r\n")
        while not connection.head_done:
            await connection.wait(timeouts.read, "backend sent no response in time")

    def release(self, connection: _Connection) -> None:
        """Back to the pool when the exchange ended cleanly; closed otherwise."""
        self._slots.release()
        connection.active = False
        if not connection.reusable():
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, deque()).append(connection)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
