"""body.held_whole: a body gunicorn already buffered is read without a socket timeout."""

from __future__ import annotations

import socket
from typing import Any

from gunicorn.config import Config
from gunicorn.http import get_parser

from backends.django_service.mlapi.body import _reading, held_whole

HEAD = b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n"


class _CountingSocket(socket.socket):
    """A real connected socket that counts its timeout changes (each one an ioctl)."""

    timeout_changes = 0

    def settimeout(self, value: float | None) -> None:
        self.timeout_changes += 1
        super().settimeout(value)


class _Meta:
    """What ``_reading`` looks at of Django's request: the WSGI environ gunicorn made."""

    def __init__(self, sock: socket.socket, stream: object) -> None:
        self.META = {"gunicorn.socket": sock, "wsgi.input": stream}


def test_reading_a_held_body_leaves_the_socket_timeout_alone() -> None:
    for sent, changes in ((HEAD + b"0123456789", 0), (HEAD + b"01234", 2)):
        client, raw = socket.socketpair()
        server = _CountingSocket(fileno=raw.detach())
        with client, server:
            request = _parsed(client, server, sent)
            client.sendall(b"56789"[: 10 - (len(sent) - len(HEAD))])
            with _reading(_Meta(server, request.body), 5.0):  # type: ignore[arg-type]
                assert request.body.read() == b"0123456789"
            assert server.timeout_changes == changes
            assert server.gettimeout() is None


def _parsed(client: socket.socket, server: socket.socket, sent: bytes) -> Any:
    client.sendall(sent)
    return next(get_parser(Config(), server, ("127.0.0.1", 1)))


def test_a_body_sent_with_its_headers_is_held_whole() -> None:
    client, server = socket.socketpair()
    with client, server:
        request = _parsed(client, server, HEAD + b"0123456789")
        assert held_whole(request.body)
        assert request.body.read() == b"0123456789"


def test_a_body_still_on_the_wire_is_not() -> None:
    """Its read waits on the socket, so it keeps the body timeout (408 for silence)."""
    client, server = socket.socketpair()
    with client, server:
        request = _parsed(client, server, HEAD + b"01234")
        assert not held_whole(request.body)
        client.sendall(b"56789")
        assert request.body.read() == b"0123456789"


def test_a_chunked_body_is_never_taken_as_held() -> None:
    client, server = socket.socketpair()
    with client, server:
        chunked = b"POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        request = _parsed(client, server, chunked + b"2\r\nab\r\n0\r\n\r\n")
        assert not held_whole(request.body)
        assert not held_whole(None)
