"""Gunicorn's threaded worker, accepting every waiting connection at once.

Gunicorn's gthread worker accepts one connection per turn of its event loop, and each
turn waits for the GIL behind the request threads. When many clients connect at once
(1,000 at the start of a benchmark run, or clients reconnecting after a restart), the
kernel has already completed their handshakes and they have sent their requests, which
wait in the listen queue until their turn: measured on the bare DRF reference at 1,000
connections, the first request of each connection took p50 2.6 s / p99 3.1 s, the later
ones p50 0.70 s / p99 0.82 s (12 % of a 5 s run were first requests, so they were its
p99). This worker accepts what is waiting, up to ``batch_size`` connections per turn,
and hands each to the thread pool exactly as gthread does.

After a response on a keep-alive connection, gthread drains what is left of the request's
body under a deadline, which sets the socket's timeout and restores it (two ``ioctl``
calls, each giving up the GIL) even when the application read the body to its end, as
every request with no body or a read JSON body has: then there is nothing to drain and
the socket is left alone.

It also tells the arbiter it is alive, and checks that its parent is, once per
``HEARTBEAT_S`` instead of on every turn: under load a turn serves a few connections, and
each heartbeat is an ``os.utime`` that gives up the GIL, after which the loop (and every
connection it would hand to a thread, /health included) waits for a request thread to
give it back. The arbiter allows ``worker_timeout_s`` (300 s) of silence.
"""

from __future__ import annotations

import math
import time
from typing import Any

from gunicorn.http.body import Body, LengthReader
from gunicorn.workers.gthread import ThreadWorker

HEARTBEAT_S = 1.0


def batch_size(workers: int, threads: int) -> int:
    """Connections one turn may accept: all it has threads for when it is the only worker.

    Every worker's loop wakes for the same listening socket and the first takes the
    batch, so with several workers a batch can leave one of them most keep-alive
    connections: at 2 x 32 and 1,000 connections batches of 32 split them 79/21 %
    (ours and the reference), batches of 8 once 47-53 % and once 21-29/79-71 %,
    gthread's 1 per turn 47-53 %. Several workers keep gthread's one per turn.
    """
    return threads if workers == 1 else 1


def body_read_to_its_end(parser: Any) -> bool:
    """Whether the request the parser holds has no body byte left to read (a body of
    declared length fully read, or none); False whenever that is not certain."""
    body = getattr(getattr(parser, "mesg", None), "body", None)
    if not isinstance(body, Body) or body.failed:
        return False
    reader = body.reader
    return isinstance(reader, LengthReader) and reader.length == 0 and body.buf.tell() == 0


class BatchAcceptThreadWorker(ThreadWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._notified_at = -math.inf
        self._parent_checked_at = -math.inf

    def notify(self) -> None:
        now = time.monotonic()
        if now - self._notified_at >= HEARTBEAT_S:
            self._notified_at = now
            super().notify()

    def is_parent_alive(self) -> bool:
        now = time.monotonic()
        if now - self._parent_checked_at < HEARTBEAT_S:
            return True
        self._parent_checked_at = now
        return bool(super().is_parent_alive())

    def _keepalive_after(self, conn: Any, keepalive: bool) -> bool:
        if keepalive and body_read_to_its_end(conn.parser):
            return True
        return bool(super()._keepalive_after(conn, keepalive))

    def accept(self, listener: Any) -> None:
        for _ in range(batch_size(self.cfg.workers, self.cfg.threads)):
            if self.nr_conns >= self.worker_connections:
                return
            before = self.nr_conns
            super().accept(listener)  # one connection, or none waiting (EAGAIN)
            if self.nr_conns == before:
                return
