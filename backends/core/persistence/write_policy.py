"""Retry rules of the background log writers, shared by the asyncio and the thread writer.

Only the database driver differs between the backends; what happens to a batch the
database refuses, and to a cache hit that arrives before its row, is decided here once.
"""

from __future__ import annotations

from collections import Counter

MAX_ATTEMPTS = 3
EARLY_HIT_RETRIES = 10


class BatchRetry:
    """A refused batch is kept for the next flush, and dropped after MAX_ATTEMPTS in a row
    (one the database keeps refusing must not block every later one)."""

    def __init__(self, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.max_attempts = max_attempts
        self._failures = 0

    def failed(self) -> bool:
        """Record a failed write; True: keep the batch and retry it, False: drop it."""
        self._failures += 1
        if self._failures >= self.max_attempts:
            self._failures = 0
            return False
        return True

    def succeeded(self) -> None:
        self._failures = 0


class EarlyHits:
    """Cache hits counted before their ml_service_cache row exists, retried for a while.

    Redis is written before the Postgres row (and another process may own that row), so a
    hit can find no row to increment yet; it is counted again at the next flushes instead
    of being lost, up to EARLY_HIT_RETRIES times.
    """

    def __init__(self, retries: int = EARLY_HIT_RETRIES) -> None:
        self._retries = retries
        self._left: dict[str, int] = {}
        self._deferred: Counter[str] = Counter()

    def settle(self, key: str, count: int, found: bool) -> None:
        """Apply the outcome of one committed increment of ``key`` by ``count``."""
        if found:
            self._left.pop(key, None)
            return
        left = self._left.get(key, self._retries)
        if left > 0:
            self._left[key] = left - 1
            self._deferred[key] += count
        else:  # the row never came (its write failed): the hit has nowhere to go
            self._left.pop(key, None)

    def take(self) -> Counter[str]:
        """The deferred hits, to be counted again by the next flush."""
        deferred, self._deferred = self._deferred, Counter()
        return deferred
