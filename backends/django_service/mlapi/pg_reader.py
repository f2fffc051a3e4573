"""Short Postgres reads a request waits for at most a timeout: the cache record, /ready.

A request thread of a sync worker cannot give up on a query of its own connection: a
frozen server (SIGSTOPped, a hung network) keeps it waiting with no limit that libpq
enforces (its TCP is still acknowledged, so tcp_user_timeout never fires, and a cancel
request needs the frozen server too). So these reads run on threads of their own, each
with its own psycopg connection, and the request waits for the answer ``timeout_s`` at
most; a read that times out is left to finish on its thread. Before, a Django sentiment
request on a frozen database waited 5 s (connect timeout) or without limit.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import psycopg

logger = logging.getLogger(__name__)
_Job = tuple[str, Sequence[Any], "Future[Any]"]


class PgReader:
    """A few daemon threads, each with one lazily opened autocommit connection."""

    def __init__(self, database_url: str, connect_timeout_s: int, threads: int = 2) -> None:
        self._url = database_url
        self._connect_timeout_s = connect_timeout_s
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"pg-reader-{n}", daemon=True)
            for n in range(threads)
        ]
        self._connections: set[psycopg.Connection[Any]] = set()
        self._lock = threading.Lock()
        for thread in self._threads:
            thread.start()

    def fetch_value(self, query: str, params: Sequence[Any], timeout_s: float) -> Any:
        """The first column of the first row (None without a row).

        Raises TimeoutError after ``timeout_s`` and the driver's error when the read fails.
        """
        future: Future[Any] = Future()
        self._jobs.put((query, params, future))
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()  # still queued (every thread is stuck): never run it
            raise

    def close(self) -> None:
        """Stop the idle threads and close their connections (a hung one is abandoned)."""
        for _ in self._threads:
            self._jobs.put(None)
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(Exception):
                conn.close()

    def _work(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while (job := self._jobs.get()) is not None:
            query, params, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                row = conn.execute(query, params).fetchone()
            except Exception as exc:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()  # a failed connection is not reused
                future.set_exception(exc)
            else:
                future.set_result(None if row is None else row[0])

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=self._connect_timeout_s)
        with self._lock:
            self._connections = {c for c in self._connections if not c.closed} | {conn}
        return conn
