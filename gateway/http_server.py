"""How the gateway serves HTTP/1.1: uvicorn's protocol with its own 400 (unparseable
request) in the error shape, a response's head and body sent in one write, and an event
loop whose listening socket accepts every waiting connection when it becomes readable.

uvicorn answers a request it cannot parse (bad framing, invalid characters, conflicting
lengths) itself, before the app sees it, as plain text without X-Request-ID; the gateway's
clients get the one error shape for those too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared_schemas.errors import error_payload
from shared_schemas.request_meta import new_request_id


class JoinedWrites:
    """The transport a response cycle writes to: what it writes in one turn of the event
    loop goes out in one write.

    uvicorn writes the head on ``http.response.start`` and the body on the next message:
    two send syscalls per answer, and on loopback each one also runs the receiver's TCP
    path. Held bytes are written when the next write comes, on close, or at the end of
    the loop turn (a streamed answer's head is not delayed past it).
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = data
            self._loop.call_soon(self.flush)
            return
        self._held += data

    def flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class ErrorShapeHttpToolsProtocol(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and not isinstance(cycle.transport, JoinedWrites):
            cycle.transport = JoinedWrites(self.transport, self.loop)  # type: ignore[assignment]

    def send_400_response(self, msg: str) -> None:
        request_id = new_request_id()  # no request was parsed: a new id, as for any
        body = json.dumps(error_payload(400, msg, request_id)).encode()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"x-request-id: " + request_id.encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


log = logging.getLogger("gateway.http_server")
# After accept() failed (out of descriptors or memory), the socket rests this long (asyncio's
# own ACCEPT_RETRY_DELAY): it stays readable, and retrying at once would spin.
_ACCEPT_RETRY_S = 1.0


class AcceptingServer(asyncio.AbstractServer):
    """A listening socket that accepts every waiting connection (up to ``backlog``) each
    time it is readable, as asyncio's own servers do, then serves each on the loop.

    uvloop's servers accept one connection per turn of the event loop (libuv 1.45 stopped
    accepting in a loop: libuv/libuv#3696). A busy gateway's turn runs hundreds of ready
    sockets (tens of ms), so 1,000 clients connecting at once waited up to seconds in the
    listen queue with their first request already sent: at 1,000 connections the p99 of
    GET /live through the gateway was 1.85 s for a p50 of 64 ms, with 468 connections still
    unaccepted after 3 s and no listen overflow (``ss -ltn``, ``nstat``).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._protocol_factory = protocol_factory
        self._batch = max(1, backlog)
        self._serving = False
        self._closed = False
        self._retry: asyncio.TimerHandle | None = None
        self._openings: set[asyncio.Task[None]] = set()
        sock.setblocking(False)
        sock.listen(backlog)

    def _accept(self) -> None:
        for _ in range(self._batch):
            try:
                connection, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # none left waiting
            except ConnectionAbortedError:
                continue  # the client gave up while queued
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM...
                log.error("accept failed, retrying in %.0f s: %s", _ACCEPT_RETRY_S, exc)
                self._loop.remove_reader(self._sock.fileno())
                self._retry = self._loop.call_later(_ACCEPT_RETRY_S, self._listen)
                return
            opening = self._loop.create_task(self._open(connection))
            self._openings.add(opening)
            opening.add_done_callback(self._openings.discard)

    async def _open(self, connection: socket.socket) -> None:
        connection.setblocking(False)
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, connection)
        except OSError:  # reset before its transport was made: nothing to serve
            connection.close()

    def _listen(self) -> None:
        self._retry = None
        if self._serving:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    # asyncio.AbstractServer
    async def start_serving(self) -> None:
        if not self._serving and not self._closed:
            self._serving = True
            self._listen()

    def is_serving(self) -> bool:
        return self._serving

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._closed else (self._sock,)

    def close(self) -> None:
        """Stop accepting; the connections already made go on (uvicorn drains them)."""
        if self._closed:
            return
        self._closed = True
        if self._serving:
            self._serving = False
            if self._retry is not None:
                self._retry.cancel()
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    async def wait_closed(self) -> None:
        while self._openings:
            await asyncio.wait(set(self._openings))

    async def serve_forever(self) -> None:
        await self.start_serving()
        await asyncio.Future()


class AcceptingLoop(uvloop.Loop):
    """uvloop, whose servers on a given listening socket are ``AcceptingServer``s.

    Only the case the gateway uses is taken over (plain TCP on a socket bound by the caller,
    served at once); anything else is uvloop's own server.
    """

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        start_serving: bool = True,
        **kwargs: Any,
    ) -> asyncio.AbstractServer:
        plain = host is None and port is None and ssl is None and not kwargs
        if sock is None or not plain or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return await super().create_server(  # type: ignore[no-any-return]
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl,
                start_serving=start_serving, **kwargs,
            )  # fmt: skip
        server = AcceptingServer(self, sock, protocol_factory, backlog)
        if start_serving:
            await server.start_serving()
        return server


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The gateway's event loop (uvicorn's ``loop="gateway.http_server:new_event_loop"``)."""
    return AcceptingLoop()
