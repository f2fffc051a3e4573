"""A circuit breaker for a store that is only a shortcut (the backends' response cache in
Redis and Postgres, the gateway's rate limits and budgets in Redis): after a failure the
store is skipped for ``retry_s``, then tried again. Here, below both the backends and the
gateway, because both use it.

Without it every request paid the full timeout of a dead store: a frozen Redis added 10 s
(FastAPI, no socket timeout) or 4 s (Django, two 2 s timeouts) to each request. With it a
dead store costs one timeout per interval; the requests in between answer as cache misses.
"""

from __future__ import annotations

import time


class CircuitBreaker:
    """Closed (calls go through) until ``failed()``; open for ``retry_s`` after it."""

    def __init__(self, retry_s: float) -> None:
        self.retry_s = retry_s
        self._open_until = 0.0
        self.failures = 0  # failures seen, for logs and tests

    def __repr__(self) -> str:
        return f"<CircuitBreaker {'open' if self.is_open() else 'closed'} failures={self.failures}>"

    def is_open(self) -> bool:
        """True while calls should be skipped."""
        return time.monotonic() < self._open_until

    def succeeded(self) -> None:
        """A check found the store working again: stop skipping it now."""
        self._open_until = 0.0

    def failed(self) -> None:
        """A call failed or timed out: skip the store for the next ``retry_s``."""
        self.failures += 1
        self._open_until = time.monotonic() + self.retry_s
