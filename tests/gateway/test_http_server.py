"""`python -m gateway` answers requests it cannot parse in the error shape, with an id, and
its event loop accepts every waiting connection at once."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from devinfra.processes import RunningService, running_service
from gateway import http_server
from gateway.__main__ import server_config
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway.upstreams import ThreadServer

T = TypeVar("T")
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


class _Recorder(asyncio.Protocol):
    """Notes the event loop's turn at which its connection was made; echoes a byte."""

    def __init__(self, turns: list[int], made: list[int], done: asyncio.Event, n: int) -> None:
        self._turns, self._made, self._done, self._n = turns, made, done, n

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._made.append(self._turns[0])
        if len(self._made) == self._n:
            self._done.set()

    def data_received(self, data: bytes) -> None:
        self._transport.write(data)  # type: ignore[attr-defined]


def _on_gateway_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=http_server.new_event_loop) as runner:
        return runner.run(coroutine)


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _accept_turns(clients: int) -> list[int]:
    """Connect ``clients`` at once to a server on the gateway's loop; the loop turn at
    which each connection reached its protocol."""
    loop = asyncio.get_running_loop()
    turns, made, done = [0], list[int](), asyncio.Event()

    def count_turn() -> None:  # one call per turn of the loop
        turns[0] += 1
        loop.call_soon(count_turn)

    sock = _listening_socket()
    server = await loop.create_server(
        lambda: _Recorder(turns, made, done, clients), sock=sock, backlog=clients + 16
    )
    assert isinstance(server, http_server.AcceptingServer)
    # All handshakes complete in the kernel while the loop runs nothing: they wait in the
    # listen queue, as when a load of clients connects while the gateway is busy.
    connected = [socket.create_connection(sock.getsockname()) for _ in range(clients)]
    loop.call_soon(count_turn)
    try:
        async with asyncio.timeout(30):
            await done.wait()
        connected[-1].sendall(b"x")  # and the connections are served
        assert await loop.sock_recv(connected[-1], 1) == b"x"
    finally:
        for client in connected:
            client.close()
        server.close()
        await server.wait_closed()
    return made


def test_the_gateway_loop_accepts_every_waiting_connection_in_one_turn() -> None:
    # uvloop's own servers take one connection per loop turn (libuv 1.45, libuv/libuv#3696):
    # 200 waiting clients took 200 turns, and a busy gateway's turn is tens of ms.
    made = _on_gateway_loop(_accept_turns(200))
    assert len(made) == 200
    assert max(made) - min(made) <= 2, f"accepted over {max(made) - min(made) + 1} turns"


def test_a_closed_server_accepts_no_more_and_keeps_its_connections() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        sock = _listening_socket()
        made: list[int] = []
        done = asyncio.Event()
        server = await loop.create_server(
            lambda: _Recorder([0], made, done, 1), sock=sock, backlog=8
        )
        address = sock.getsockname()
        reader, writer = await asyncio.open_connection(*address)
        await done.wait()
        assert server.is_serving()
        server.close()
        await server.wait_closed()
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(*address)
        writer.write(b"y")  # the connection made before the close is still served
        assert await reader.readexactly(1) == b"y"
        writer.close()

    _on_gateway_loop(scenario())


def test_python_m_gateway_serves_on_the_accepting_loop_with_a_deep_backlog() -> None:
    settings = GatewaySettings(_env_file=None, backend="fastapi")  # type: ignore[call-arg]
    config = server_config(create_app(settings), settings)
    assert config.get_loop_factory() is http_server.new_event_loop
    assert config.backlog >= 1000  # a thousand clients connecting at once are all queued
