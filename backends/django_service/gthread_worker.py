"""Gunicorn's threaded worker, accepting every waiting connection at once.

Gunicorn's gthread worker accepts one connection per turn of its event loop, and each
turn waits for the GIL behind the request threads. When many clients connect at once
(1,000 at the start of a benchmark run, or clients reconnecting after a restart), the
kernel has already completed their handshakes and they have sent their requests, which
wait in the listen queue until their turn: measured on the bare DRF reference at 1,000
connections, the first request of each connection took p50 2.6 s / p99 3.1 s, the later
ones p50 0.70 s / p99 0.82 s (12 % of a 5 s run were first requests, so they were its
p99). This worker accepts what is waiting, up to ``batch_size`` connections per turn,
and hands each to the thread pool exactly as gthread does, except a /health or /live
request already received, which it serves itself (``enqueue_req``).
"""

from __future__ import annotations

import socket
from concurrent.futures import Future
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

# Requests answered on the worker's own loop thread, not handed to the thread pool: the
# probes, constant-time and never touching a store.
_PROBES = (b"GET /health ", b"GET /live ")
_PEEK_BYTES = 1024


def batch_size(workers: int, threads: int) -> int:
    """Connections one turn may accept: all it has threads for when it is the only worker.

    Every worker's loop wakes for the same listening socket and the first takes the
    batch, so with several workers a batch can leave one of them most keep-alive
    connections: at 2 x 32 and 1,000 connections batches of 32 split them 79/21 %
    (ours and the reference), batches of 8 once 47-53 % and once 21-29/79-71 %,
    gthread's 1 per turn 47-53 %. Several workers keep gthread's one per turn.
    """
    return threads if workers == 1 else 1


def complete_probe(sock: socket.socket) -> bool:
    """Whether the socket holds a whole GET /health or /live request (headers ended, no
    body), so serving it cannot block on the client."""
    try:
        data = sock.recv(_PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:  # nothing yet (EAGAIN), or a broken connection: the pool's business
        return False
    return data.startswith(_PROBES) and b"\r\n\r\n" in data


class BatchAcceptThreadWorker(ThreadWorker):  # type: ignore[misc]
    def enqueue_req(self, conn: Any) -> None:
        """Serve a probe already received on this thread, anything else in the pool.

        Under model load each hand-off to a pool thread and back waits for the GIL behind
        the request threads finishing a batch; answering /health and /live here skips
        two of those waits (same app, same middleware, same answer).
        """
        buffered = conn.initialized and conn.parser.unreader.buf.getvalue()
        if self.cfg.is_ssl or buffered or not complete_probe(conn.sock):
            super().enqueue_req(conn)
            return
        done: Future[Any] = Future()
        try:
            done.set_result(self.handle(conn))
        except Exception as exc:
            done.set_exception(exc)
        self.finish_request(conn, done)

    def accept(self, listener: Any) -> None:
        for _ in range(batch_size(self.cfg.workers, self.cfg.threads)):
            if self.nr_conns >= self.worker_connections:
                return
            before = self.nr_conns
            super().accept(listener)  # one connection, or none waiting (EAGAIN)
            if self.nr_conns == before:
                return
