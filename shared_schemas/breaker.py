"""A circuit breaker for a store that is only a shortcut (the backends' response cache in
Redis and Postgres, the gateway's rate limits and budgets in Redis) or that may be away
(the pgvector store): after a failure the store is skipped for ``retry_s``, then one
call is let through as a trial. Here, below both the backends and the gateway, because
both use it.

Without it every request paid the full timeout of a dead store: a frozen Redis added 10 s
(FastAPI, no socket timeout) or 4 s (Django, two 2 s timeouts) to each request. With it a
dead store costs one timeout per interval; the requests in between answer as cache misses
(or 503 for the vector store).

The trial ("half-open"): when the interval ends, only the first caller goes to the store;
the others keep being skipped until the trial reports. Before, every request in flight at
that moment paid one timeout each time the interval ended. A trial that never reports
(its caller crashed before saying how the call went) gives way to the next caller after
another ``retry_s``.

Usage: ``if breaker.allow(): try call; breaker.succeeded() / except: breaker.failed()``.
Thread-safe (the backends' worker threads) and fine on an event loop (the lock is held
for a few instructions, never across a call).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """Closed (calls go through) until ``failed()``; open for ``retry_s`` after it; then
    half-open: one trial call, which closes it (``succeeded()``) or opens it again."""

    def __init__(self, retry_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._until = 0.0  # open: end of the interval; half-open: when the trial is given up
        self.failures = 0  # failures seen, for logs and tests

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.state} failures={self.failures}>"

    @property
    def state(self) -> State:
        return self._state

    @property
    def retry_after_s(self) -> int:
        """The interval as a whole number of seconds, for a ``Retry-After`` header."""
        return max(1, math.ceil(self.retry_s))

    def is_open(self) -> bool:
        """True while calls are being skipped (open, or half-open with a trial out)."""
        return self._state != "closed"

    def allow(self) -> bool:
        """May this caller call the store now? When the breaker is not closed, True for one
        caller only: the trial, which must report with ``succeeded()`` or ``failed()``."""
        if self._state == "closed":  # the common case, without the lock
            return True
        return self._admit_trial()

    def _admit_trial(self) -> bool:
        with self._lock:
            if self._state == "closed":
                return True
            now = self._clock()
            if now < self._until:
                return False
            # open and its interval is over, or half-open and the trial never reported
            self._state = "half-open"
            self._until = now + self.retry_s
            return True

    def succeeded(self) -> None:
        """A call (the trial, a check) found the store working: close the breaker."""
        if self._state != "closed":
            with self._lock:
                self._state = "closed"

    def failed(self) -> None:
        """A call failed or timed out: skip the store for the next ``retry_s``."""
        with self._lock:
            self.failures += 1
            self._state = "open"
            self._until = self._clock() + self.retry_s
