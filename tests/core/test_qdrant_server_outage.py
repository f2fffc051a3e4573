"""A Qdrant server that is away or frozen: prompt 503s, then skipped, never a 30 s wait.

No Qdrant server can be installed on this machine (only the client's local mode is), so
these tests cover the outage half with real sockets and the real client: a port nobody
listens on, and a listener that accepts connections and never answers (a frozen server).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from backends.core.errors import StoreUnreachable
from backends.core.vectorstore.base import VectorStoreDown
from backends.core.vectorstore.qdrant_store import QdrantStore

VECTOR = np.ones(4, dtype=np.float32)

# The client asks a server for its version when it is built; these servers never say.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")


class FrozenServer:
    """Accepts TCP connections, reads nothing, answers nothing; counts connections."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def frozen() -> Iterator[FrozenServer]:
    server = FrozenServer()
    yield server
    server.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


def test_a_frozen_server_costs_one_timeout_then_is_skipped(frozen: FrozenServer) -> None:
    store = QdrantStore(url=f"http://127.0.0.1:{frozen.port}", timeout_s=1, retry_s=30)
    started = time.monotonic()
    with pytest.raises(StoreUnreachable, match="Qdrant"):
        store.search("docs", VECTOR, 3)
    first = time.monotonic() - started
    assert first < 10, f"the first call waited {first:.1f} s (the old client timeout was 30 s)"
    connections = frozen.accepted
    assert connections >= 1

    started = time.monotonic()
    with pytest.raises(VectorStoreDown) as skipped:
        store.search("docs", VECTOR, 3)
    assert time.monotonic() - started < 0.5
    assert skipped.value.retry_after_s == 30
    assert frozen.accepted == connections, "a skipped call must not reach the server"

    # /ready's ping always asks the server, so readiness tells the truth.
    with pytest.raises(StoreUnreachable):
        store.ping()
    assert frozen.accepted > connections
    store.close()


def test_a_refused_connection_is_a_prompt_503_then_skipped() -> None:
    store = QdrantStore(url=f"http://127.0.0.1:{closed_port()}", timeout_s=5, retry_s=30)
    started = time.monotonic()
    with pytest.raises(StoreUnreachable, match="Qdrant"):
        store.list_collections()
    assert time.monotonic() - started < 3
    with pytest.raises(VectorStoreDown):
        store.collection_exists("docs")
    store.close()
