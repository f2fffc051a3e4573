"""The Django server's threaded worker accepts the connections waiting, not one per turn.

A real gunicorn worker (its thread pool serving a WSGI app) on a real listening socket
with clients already connected and their requests sent: one turn of the accept loop
must take all of them, up to its thread count and its connection limit, when it is the
only worker (several workers keep gthread's one per turn, so they share the socket).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from backends.django_service.gthread_worker import HEARTBEAT_S, BatchAcceptThreadWorker

REQUEST = b"GET /live HTTP/1.1\r\nHost: test\r\n\r\n"


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


@contextlib.contextmanager
def _worker(
    threads: int, worker_connections: int, workers: int = 1
) -> Iterator[tuple[Any, socket.socket]]:
    cfg = Config()
    cfg.set("workers", workers)
    cfg.set("threads", threads)
    cfg.set("worker_connections", worker_connections)
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    listener.setblocking(False)  # as gthread registers it
    worker = BatchAcceptThreadWorker(1, os.getppid(), [listener], None, 30, cfg, Logger(cfg))
    worker.tpool = worker.get_thread_pool()
    worker.method_queue.init()
    worker.wsgi = _app
    try:
        yield worker, listener
    finally:
        worker.tpool.shutdown(wait=True)
        worker.method_queue.close()
        worker.tmp.close()
        listener.close()


@contextlib.contextmanager
def _waiting_clients(listener: socket.socket, count: int) -> Iterator[list[socket.socket]]:
    """Connected (the kernel completed the handshakes) with their requests sent."""
    clients = [socket.create_connection(listener.getsockname(), timeout=10) for _ in range(count)]
    try:
        for client in clients:
            client.sendall(REQUEST)
        yield clients
    finally:
        for client in clients:
            client.close()


def _answer(client: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"ok"):
        chunk = client.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize(
    ("workers", "threads", "worker_connections", "accepted"),
    [(1, 4, 1000, 4), (1, 8, 1000, 6), (1, 8, 3, 3), (2, 8, 1000, 1)],
    ids=["up-to-threads", "all-waiting", "connection-limit", "one-when-shared"],
)
def test_one_turn_accepts_the_waiting_connections(
    workers: int, threads: int, worker_connections: int, accepted: int
) -> None:
    with (
        _worker(threads, worker_connections, workers) as (worker, listener),
        _waiting_clients(listener, 6) as clients,
    ):
        worker.accept(listener)  # one readable event on the listener

        assert worker.nr_conns == accepted
        for client in clients[:accepted]:  # the listen queue is first in, first out
            assert _answer(client).startswith(b"HTTP/1.1 200 OK")


def test_the_heartbeat_is_once_per_interval_not_once_per_turn() -> None:
    """gthread touched its heartbeat file (an os.utime, which gives up the GIL) on every
    turn of its loop; ours at most once per HEARTBEAT_S, and still every interval."""
    with _worker(threads=4, worker_connections=8) as (worker, _):

        def beat() -> int:
            return os.fstat(worker.tmp.fileno()).st_mtime_ns

        worker.notify()
        first = beat()
        for _ in range(100):  # a hundred busy turns
            worker.notify()
        assert beat() == first
        time.sleep(HEARTBEAT_S)
        worker.notify()
        assert beat() != first


class _CountingSocket(socket.socket):
    """A real connected socket that counts its timeout changes (each one an ioctl)."""

    timeout_changes = 0

    def settimeout(self, value: float | None) -> None:
        self.timeout_changes += 1
        super().settimeout(value)


@contextlib.contextmanager
def _served_connection(raw: bytes) -> Iterator[tuple[Any, Any]]:
    """A gunicorn connection whose client sent ``raw``, parsed up to its first request."""
    from gunicorn.http import get_parser

    client, server = socket.socketpair()
    sock = _CountingSocket(fileno=server.detach())
    try:
        client.sendall(raw)
        parser = get_parser(Config(), sock, ("127.0.0.1", 1))
        request = next(parser)

        class Conn:
            pass

        conn = Conn()
        conn.parser = parser  # type: ignore[attr-defined]
        yield conn, request
    finally:
        client.close()
        sock.close()


def test_a_body_read_to_its_end_leaves_the_socket_alone() -> None:
    """No drain (and no settimeout pair) after a request whose body the app read."""
    post = b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd"
    for raw, read in ((REQUEST, b""), (post, b"abcd")):
        with (
            _worker(threads=2, worker_connections=10) as (worker, _listener),
            _served_connection(raw + REQUEST) as (conn, request),
        ):
            assert request.body.read() == read
            sock = conn.parser.unreader.sock
            sock.timeout_changes = 0
            assert worker._keepalive_after(conn, True) is True
            assert sock.timeout_changes == 0
            assert next(conn.parser).path == "/live"  # the next request is intact


def test_a_body_left_unread_is_still_drained() -> None:
    post = b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd"
    with (
        _worker(threads=2, worker_connections=10) as (worker, _listener),
        _served_connection(post + REQUEST) as (conn, request),
    ):
        assert request.body.read(1) == b"a"
        assert worker._keepalive_after(conn, True) is True
        assert next(conn.parser).path == "/live"
        assert worker._keepalive_after(conn, False) is False
