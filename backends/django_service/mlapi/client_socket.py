"""Whether a request's client is still connected, asked of its socket.

WSGI never tells the app that a client went away, but gunicorn hands the request's socket
in ``environ["gunicorn.socket"]``. Once the body is read, what the socket has left is the
client's next request or, if it hung up, end of file: a non-blocking peek that returns
no bytes means the client left. The inference runtime asks this before a waiting model
call enters a batch (``collect_timing(client_gone=...)``), so a batch never computes an
answer nobody will read (FastAPI learns the same from ASGI's http.disconnect).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from functools import partial

from django.http import HttpRequest


def client_gone_check(request: HttpRequest) -> Callable[[], bool] | None:
    """The check for this request's client; None when the server gives no plain socket
    (runserver, tests' client, TLS: a peek would read encrypted records)."""
    sock = request.META.get("gunicorn.socket")
    if not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket):
        return None
    return partial(client_gone, sock)


def client_gone(sock: socket.socket) -> bool:
    """True when the peer closed (end of file) or reset the connection; never blocks and
    never consumes a byte (a pipelined next request stays for the server)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # connected, nothing sent since the request
    except OSError:
        return True  # reset by the peer, or closed under us
