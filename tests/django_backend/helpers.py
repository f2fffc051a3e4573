"""Small helpers shared by the Django backend tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


def assert_error_shape(body: Any, code: str, request_id: str | None = None) -> None:
    assert set(body) == {"error", "request_id"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert isinstance(body["error"]["details"], list)
    assert isinstance(body["request_id"], str) and body["request_id"]
    if request_id is not None:
        assert body["request_id"] == request_id


def eventually(probe: Callable[[], T | None], timeout_s: float = 10.0) -> T:
    """Poll until ``probe`` returns something truthy (the log writer flushes in batches)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout_s}s")
        time.sleep(0.1)


def raw_request(base_url: str, head: str) -> bytes:
    """Send only a request head (e.g. a huge declared Content-Length) and read the answer."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
