"""A client-side deadline for a request's work on a sync psycopg connection.

A frozen PostgreSQL (SIGSTOPped, a hung host) keeps its TCP connections open: the kernel
still acknowledges every packet, so no statement timeout, ``tcp_user_timeout`` or
keepalive fires, and a cancel request (``conn.cancel_safe``) needs the frozen postmaster
too. Measured against a SIGSTOPped server, ``SELECT 1`` waited until SIGCONT with each of
those; with its socket shut down from another thread, psycopg raised OperationalError
1.0 s after the query started (a 1 s deadline) and marked the connection broken, so the
pool discards it instead of handing it to the next request.

So ``Watchdog.deadline(conn, timeout_s)`` arms a timer on the watchdog's thread (each store
owns one watchdog, so one thread per store and process); when it fires
before the block ends, it shuts the connection's socket down (both ways), and the waiting
call raises ``QueryTimeout``, a ``psycopg.OperationalError`` that callers already treat as
a lost connection. The block disarms the timer under the same lock the timer fires under,
so a timer can never touch a connection after the block gave it back to its pool.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

logger = logging.getLogger(__name__)


class QueryTimeout(psycopg.OperationalError):
    """PostgreSQL did not answer within the deadline; the connection was closed."""


@dataclass(order=True)
class _Timer:
    due: float
    seq: int
    conn: psycopg.Connection[Any] = field(compare=False)
    fd: int = field(compare=False)
    armed: bool = field(default=True, compare=False)
    fired: bool = field(default=False, compare=False)


class Watchdog:
    """One daemon thread (started on first use) that fires the deadlines of one store.

    A finished block only disarms its timer; the thread drops disarmed timers when it wakes
    for the oldest one. Every timer has its store's timeout, so the heap is in arrival order
    and one wake-up drops every block that finished since the last: the thread wakes about
    once per timeout, not once per query.
    """

    def __init__(self, name: str = "pg-deadline") -> None:
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def deadline(self, conn: psycopg.Connection[Any], timeout_s: float) -> Iterator[None]:
        """Work on ``conn`` inside the block must end within ``timeout_s``, else the
        connection is shut down and the waiting call raises ``QueryTimeout``."""
        timer = _Timer(time.monotonic() + timeout_s, next(self._seq), conn, conn.pgconn.socket)
        with self._cond:
            heapq.heappush(self._timers, timer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._timers[0] is timer:  # sooner than what the thread sleeps for
                self._cond.notify()
        try:
            yield
        except psycopg.OperationalError as exc:
            if timer.fired and not isinstance(exc, QueryTimeout):
                raise QueryTimeout(
                    f"PostgreSQL did not answer within {timeout_s:g} s (connection closed)"
                ) from exc
            raise
        finally:
            with self._cond:
                timer.armed = False  # popped by the thread when due; never fired now
            if timer.fired:  # also when the work ended just before the shutdown
                with contextlib.suppress(Exception):
                    conn.close()  # its pool discards it

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._timers and not self._timers[0].armed:
                    heapq.heappop(self._timers)
                if not self._timers:
                    self._cond.wait()
                    continue
                wait_s = self._timers[0].due - time.monotonic()
                if wait_s > 0:
                    self._cond.wait(wait_s)
                    continue
                timer = heapq.heappop(self._timers)
                timer.fired = True
                _shut_down(timer)


def _shut_down(timer: _Timer) -> None:
    """Wake the call waiting on ``timer``'s socket: it reads end-of-file and fails."""
    if timer.conn.closed:
        return
    try:
        sock = socket.socket(fileno=os.dup(timer.fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
    logger.warning("a PostgreSQL call ran past its deadline: its connection was closed")
