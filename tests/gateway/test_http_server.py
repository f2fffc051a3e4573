"""`python -m gateway` answers requests it cannot parse in the error shape, with an id."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from devinfra.processes import RunningService, running_service
from tests.gateway.upstreams import ThreadServer

UNPARSEABLE = {
    "bad request line": b"GET /\x01 HTTP/1.1\r\nhost: gw\r\n\r\n",
    "bad header name": b"GET / HTTP/1.1\r\nhost: gw\r\nbad header: x\r\n\r\n",
    "bad chunk size": b"POST /api/v1/x HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked"
    b"\r\n\r\nzz\r\n",
}


def _exchange(url: str, raw: bytes) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def gateway_process(
    fast: ThreadServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    env = {"ML_SERVICE_BACKEND": "fast", "ML_BACKEND_FAST_URL": fast.url, "GATEWAY_API_KEYS": ""}
    with running_service("gateway", env, tmp_path_factory.mktemp("gw")) as service:
        yield service


@pytest.mark.parametrize("raw", UNPARSEABLE.values(), ids=UNPARSEABLE.keys())
def test_an_unparseable_request_is_a_400_in_the_error_shape(
    gateway_process: RunningService, raw: bytes
) -> None:
    answer = _exchange(gateway_process.base_url, raw)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert lines[0].startswith("HTTP/1.1 400")
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert set(error) == {"error", "request_id"}
    assert error["error"]["code"] == "bad_request"
    assert headers["x-request-id"] == error["request_id"]
