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
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.gthread import ThreadWorker


def batch_size(workers: int, threads: int) -> int:
    """Connections one turn may accept: all it has threads for when it is the only worker.

    Every worker's loop wakes for the same listening socket and the first takes the
    batch, so with several workers a batch can leave one of them most keep-alive
    connections: at 2 x 32 and 1,000 connections batches of 32 split them 79/21 %
    (ours and the reference), batches of 8 once 47-53 % and once 21-29/79-71 %,
    gthread's 1 per turn 47-53 %. Several workers keep gthread's one per turn.
    """
    return threads if workers == 1 else 1


class BatchAcceptThreadWorker(ThreadWorker):  # type: ignore[misc]
    def accept(self, listener: Any) -> None:
        for _ in range(batch_size(self.cfg.workers, self.cfg.threads)):
            if self.nr_conns >= self.worker_connections:
                return
            before = self.nr_conns
            super().accept(listener)  # one connection, or none waiting (EAGAIN)
            if self.nr_conns == before:
                return
