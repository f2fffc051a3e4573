"""A TCP relay in front of a real server whose outage a test switches on and off.

``down()`` closes the listening socket and every relayed connection (clients see a reset,
new connections are refused, as when the database stops); ``up()`` listens again on the
same port. ``freeze()`` stops relaying bytes but keeps every connection open (a server
that hangs, SIGSTOPped); ``thaw()`` relays again. ``sent`` counts the pieces clients
sent (requests, roughly), frozen or not. Threads, so it serves asyncio and blocking
clients alike.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from devinfra.ports import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self.sent = 0

    def dsn_through(self, dsn: str) -> str:
        """``dsn`` (a postgresql:// URL of the target) with the relay as its host and port."""
        parts = urlsplit(dsn)
        return parts._replace(netloc=f"{parts.username}@127.0.0.1:{self.port}").geturl()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by down()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink, source is client), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client:
                    self.sent += 1
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._sockets.discard(source)
            source.close()


@contextlib.contextmanager
def relay_to(dsn: str) -> Iterator[TcpProxy]:
    """A relay in front of the server of ``dsn``, listening while the block runs."""
    parts = urlsplit(dsn)
    relay = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    relay.up()
    try:
        yield relay
    finally:
        relay.thaw()
        relay.down()
