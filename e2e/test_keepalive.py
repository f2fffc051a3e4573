"""Each backend keeps an idle connection open longer than the gateway keeps it pooled.

The gateway reuses a pooled connection for up to ``GATEWAY_KEEPALIVE_S`` of idleness. A
backend that closes it sooner races the gateway's next request: when the backend's close
reaches the gateway after it picked the connection (a busy loop widens that window), the
request meets a closed socket, and a POST is not repeated (it may not be idempotent): a
client got a 502, a shadow mirror an error and the candidate no request-log row
(gunicorn's 2 s default against the gateway's 4 s: 1 in 36 POSTs sent 1.9-2.1 s apart
failed with BackendClosed).
"""

from __future__ import annotations

import socket
import time

import pytest

from e2e.conftest import BACKEND_MODULES, Backends
from gateway.settings import GatewaySettings

REQUEST = (
    b"POST /api/v1/transcription/estimate-cost HTTP/1.1\r\nHost: e2e\r\n"
    b"Content-Type: application/json\r\nContent-Length: 24\r\n\r\n"
    b'{"duration_seconds": 60}'
)


def _exchange(sock: socket.socket) -> bytes:
    """Send the request, read the answer's head and body (by Content-Length)."""
    sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


@pytest.mark.parametrize("backend", list(BACKEND_MODULES))
def test_an_idle_connection_outlives_the_gateways_pool(backend: str, backends: Backends) -> None:
    pooled_s = GatewaySettings.model_fields["keepalive_s"].default
    host, port = backends.services[backend].base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        assert _exchange(sock).startswith(b"HTTP/1.1 200")
        time.sleep(pooled_s + 0.5)  # idle past the gateway's longest reuse
        assert _exchange(sock).startswith(b"HTTP/1.1 200"), (
            f"{backend} closed an idle connection before {pooled_s} s"
        )
