"""Broken HTTP framing and stalled bodies sent straight to a backend, byte by byte.

A bad chunk size, a chunk without its CRLF, a body cut short by the client closing: each
is a 400 in the error shape (they were 500s); a client that goes silent mid-body is a 408
after the body timeout, on Django too, where a chunk size of 2**72 followed by silence
held a sync worker until gunicorn killed it (300 s).
"""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from e2e.conftest import BACKEND_MODULES, BODY_TIMEOUT_S, Backends

HEAD = (
    b"POST /api/v1/analysis/sentiment HTTP/1.1\r\nHost: test\r\n"
    b"Content-Type: application/json\r\nX-Request-ID: %s\r\n"
)
CHUNKED = b"Transfer-Encoding: chunked\r\n\r\n"
BROKEN = {
    "chunk_size_not_hex": CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n",
    "chunk_size_negative": CHUNKED + b"-5\r\nabc\r\n0\r\n\r\n",
    "chunk_without_crlf": CHUNKED + b"3\r\nabcXX0\r\n\r\n",
    "chunk_cut_short": CHUNKED + b"10\r\nabc",
    "content_length_cut_short": b'Content-Length: 100\r\n\r\n{"text":',
}
# the client then sends nothing more but keeps the connection open
STALLED = {
    "chunk_cut_short": CHUNKED + b'10\r\n{"tex',
    "content_length_cut_short": b'Content-Length: 100\r\n\r\n{"text":',
}
# a chunk size no body can reach, then silence: granian's parser refuses a size over 64
# bits at once; gunicorn's takes it and waits for the chunk, until the body timeout
HUGE_CHUNK = CHUNKED + b"%x\r\nabc\r\n0\r\n\r\n" % 2**72
HUGE_CHUNK_ANSWER = {"fastapi": (400, "bad_request"), "django": (408, "request_timeout")}


def _exchange(base_url: str, request: bytes, *, close_write: bool) -> tuple[int, dict[str, str]]:
    """Send raw bytes, optionally half-close, read the answer: (status, error body)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT_S + 20) as sock:
        sock.sendall(request)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            if body and _complete(head, body):
                break
    status = int(head.split(b" ", 2)[1])
    payload = json.loads(body)
    return status, {"code": payload["error"]["code"], "request_id": payload["request_id"]}


def _complete(head: bytes, body: bytes) -> bool:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


@pytest.mark.parametrize("backend", BACKEND_MODULES)
@pytest.mark.parametrize("framing", BROKEN.values(), ids=BROKEN.keys())
def test_broken_framing_is_a_400(backend: str, framing: bytes, backends: Backends) -> None:
    request_id = f"framing-{uuid.uuid4()}"
    status, error = _exchange(
        backends.services[backend].base_url,
        HEAD % request_id.encode() + framing,
        close_write=True,
    )
    assert (status, error) == (400, {"code": "bad_request", "request_id": request_id})


@pytest.mark.parametrize("backend", BACKEND_MODULES)
@pytest.mark.parametrize("framing", STALLED.values(), ids=STALLED.keys())
def test_a_stalled_body_is_a_408(backend: str, framing: bytes, backends: Backends) -> None:
    request_id = f"stalled-{uuid.uuid4()}"
    status, error = _exchange(
        backends.services[backend].base_url,
        HEAD % request_id.encode() + framing,
        close_write=False,
    )
    assert (status, error) == (408, {"code": "request_timeout", "request_id": request_id})


@pytest.mark.parametrize("backend", BACKEND_MODULES)
def test_a_chunk_size_of_2_pow_72_is_answered(backend: str, backends: Backends) -> None:
    request_id = f"huge-chunk-{uuid.uuid4()}"
    status, error = _exchange(
        backends.services[backend].base_url,
        HEAD % request_id.encode() + HUGE_CHUNK,
        close_write=False,
    )
    expected_status, expected_code = HUGE_CHUNK_ANSWER[backend]
    assert (status, error) == (expected_status, {"code": expected_code, "request_id": request_id})
