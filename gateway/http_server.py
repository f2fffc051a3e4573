"""uvicorn's HTTP/1.1 protocol with its own 400 (unparseable request) in the error shape,
and a response's head and body sent in one write.

uvicorn answers a request it cannot parse (bad framing, invalid characters, conflicting
lengths) itself, before the app sees it, as plain text without X-Request-ID; the gateway's
clients get the one error shape for those too.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

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
