"""Redis for a threaded server: each request thread sends on its own connection.

redis-py's pooled client takes a connection from its pool for every command and first
checks that nothing is left to read on it (``can_read``: a non-blocking recv between two
``settimeout`` calls). Those are three system calls per command, and each gives up the
GIL, which under load a thread then waits to get back behind the other request threads
and the model workers. A client made with ``single_connection_client`` keeps one
connection and skips the check (cpu per GET, one thread: 69 -> 52 us). Each thread gets
one such client on first use, its connection taken from one shared pool; when the thread
ends, the client is collected and gives the connection back, so there are at most as
many connections as threads that used Redis at once, and later threads reuse them.

What the pool's check was for: a connection that Redis closed (a restart) is found dead
by the next command on it. That command is sent once more, on a new connection, so a
restart costs no failed request, while a Redis that is down or silent still fails at
once (no retry on a timeout: the cache's breaker handles it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

T = TypeVar("T")


class ThreadRedis:
    """The few commands the Django backend sends (get, set, ping), per thread."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self._local = threading.local()

    @classmethod
    def from_url(cls, url: str, timeout_s: float) -> ThreadRedis:
        return cls(
            redis.ConnectionPool.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                # no retries: they wait for the same dead server again (redis-py's default
                # three made a frozen Redis cost 2.0 s per request at a 0.5 s timeout)
                retry=Retry(NoBackoff(), 0),
            )
        )

    def client(self) -> redis.Redis[bytes]:
        """This thread's client (connected on first use: raises if Redis is away)."""
        client: redis.Redis[bytes] | None = getattr(self._local, "client", None)
        if client is None:
            client = redis.Redis(connection_pool=self.pool, single_connection_client=True)
            self._local.client = client
        return client

    def get(self, key: str) -> bytes | None:
        return self._call(lambda client: client.get(key))

    def set(self, key: str, value: bytes, *, ex: int) -> None:
        self._call(lambda client: client.set(key, value, ex=ex))

    def ping(self) -> object:
        return self._call(lambda client: client.ping())

    def _call(self, command: Callable[[redis.Redis[bytes]], T]) -> T:
        client = self.client()
        try:
            return command(client)
        except redis.ConnectionError:
            # its connection was closed (redis-py disconnected it): the next command on
            # this client connects again; a server that is down refuses that one too
            return command(client)

    def close(self) -> None:
        """Close every connection (the threads' clients reconnect if used again)."""
        self.pool.disconnect()
