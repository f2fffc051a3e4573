"""Short Postgres reads a request waits for at most a timeout: the cache record, /ready.

A request thread of a sync worker cannot give up on a query of its own connection: a
frozen server (SIGSTOPped, a hung network) keeps it waiting with no limit that libpq
enforces (its TCP is still acknowledged, so tcp_user_timeout never fires, and a cancel
request needs the frozen server too). So these reads run on threads of their own, each
with its own psycopg connection, and the request waits for the answer ``timeout_s`` at
most. Before, a Django sentiment request on a frozen database waited 5 s (connect
timeout) or without limit.

A read still running at that deadline has its connection shut down then
(``core/persistence/deadline.Watchdog``, as the request path's stores do): its thread
fails the read, drops the connection and is free for the next read, which connects
again. Before, the read was left to finish on its thread, so with a frozen server or a
row lock held elsewhere two such reads took both threads until the server answered, and
meanwhile every other read waited out its timeout in the queue (a hit became a miss),
the asyncpg pool's defect on the FastAPI side.

Cache reads are coalesced (``fetch_cache``): a thread that takes one also takes every
other cache read waiting then (up to ``MAX_COALESCED``) and answers them all with one
``sql.SELECT_CACHE_MANY``. Under load (an uncached request reads the record after each
Redis miss) one round trip serves many requests; alone, a read is the one-key
``sql.SELECT_CACHE`` it was before.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import psycopg

from backends.core.persistence import sql
from backends.core.persistence.deadline import Watchdog

logger = logging.getLogger(__name__)
# query (None: a cache read of the key params[0]), params, deadline, answer
_Job = tuple[str | None, Sequence[Any], float, "Future[Any]"]
# Cache reads answered by one statement at most (a batch of the model is 32 texts)
MAX_COALESCED = 64


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
        self._watchdog = Watchdog("pg-reader-deadline")
        for thread in self._threads:
            thread.start()

    def fetch_value(self, query: str, params: Sequence[Any], timeout_s: float) -> Any:
        """The first column of the first row (None without a row).

        Raises TimeoutError after ``timeout_s`` and the driver's error when the read fails.
        """
        return self._wait(query, params, timeout_s)

    def fetch_cache(self, key: str, timeout_s: float) -> Any:
        """The ``response_data`` of a live ml_service_cache row (None without one), its hit
        counted; read with the other cache reads waiting at the same time.

        Raises as ``fetch_value`` does.
        """
        return self._wait(None, (key,), timeout_s)

    def _wait(self, query: str | None, params: Sequence[Any], timeout_s: float) -> Any:
        future: Future[Any] = Future()
        self._jobs.put((query, params, time.monotonic() + timeout_s, future))
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
        later: list[_Job | None] = []  # taken while gathering cache reads, for after them
        while (job := later.pop(0) if later else self._jobs.get()) is not None:
            jobs = [job]
            if job[0] is None:
                jobs += self._gather_cache_reads(later)
            jobs = [j for j in jobs if j[3].set_running_or_notify_cancel()]
            if not jobs:
                continue
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                left_s = min(deadline for _, _, deadline, _ in jobs) - time.monotonic()
                if left_s <= 0:  # connecting took it all; the caller gave up: keep the conn
                    for *_, future in jobs:
                        future.set_exception(TimeoutError("no time left for the read"))
                    continue
                with self._watchdog.deadline(conn, left_s):
                    answers = self._read(conn, jobs)
            except Exception as exc:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()  # a failed connection is not reused
                for *_, future in jobs:
                    future.set_exception(exc)
            else:
                for (*_, future), answer in zip(jobs, answers, strict=True):
                    future.set_result(answer)

    def _gather_cache_reads(self, later: list[_Job | None]) -> list[_Job]:
        """The cache reads waiting now; other jobs, and the closing sentinel after which
        nothing is taken, go to ``later`` in order."""
        reads: list[_Job] = []
        while len(reads) < MAX_COALESCED - 1:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                later.append(job)
                break
            if job[0] is None:
                reads.append(job)
            else:
                later.append(job)
        return reads

    def _read(self, conn: psycopg.Connection[Any], jobs: list[_Job]) -> list[Any]:
        """Each job's first column of its first row (None without a row)."""
        query, params, _, _ = jobs[0]
        if query is not None:
            row = conn.execute(query, params).fetchone()
            return [None if row is None else row[0]]
        keys = [str(params[0]) for _, params, _, _ in jobs]
        if len(jobs) == 1:  # alone: the one-key statement, which costs Postgres less
            row = conn.execute(sql.as_pyformat(sql.SELECT_CACHE), (keys[0],)).fetchone()
            return [None if row is None else row[0]]
        hits = Counter(keys)
        many = sql.as_pyformat(sql.SELECT_CACHE_MANY)
        found = dict(conn.execute(many, (list(hits), list(hits.values()))).fetchall())
        return [found.get(key) for key in keys]

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=self._connect_timeout_s)
        with self._lock:
            self._connections = {c for c in self._connections if not c.closed} | {conn}
        return conn
