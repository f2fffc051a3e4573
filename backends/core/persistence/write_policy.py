"""Rules of the background log writers, shared by the asyncio and the thread writer.

Only the database driver differs between the backends; what happens to rows while the
database is away, to a row the database refuses, and to a cache hit that arrives before
its row, is decided here once. Each writer only says which of its driver's exceptions
are a refusal (`is_refusal`), from the SQLSTATE the server sent.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

logger = logging.getLogger(__name__)


class LoggedRow(Protocol):
    """What a refused row's log line names."""

    @property
    def request_id(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def endpoint(self) -> str: ...


T = TypeVar("T")
R = TypeVar("R", bound=LoggedRow)

EARLY_HIT_RETRIES = 10
# 50,000 rows is 40 min of a 20 req/s service or 25 s at 2,000 req/s; a row is ~1-2 KB
# (payloads are capped at 16 KB each), so the worst case is ~100 MB of memory per process.
DEFAULT_BUFFER_ROWS = 50_000

# SQLSTATE classes that say nothing about the rows: the connection or the server is
# (temporarily) unable to take them. 08 connection exception, 40 transaction rollback
# (deadlock, serialization), 53 insufficient resources, 57 operator intervention (the
# server is shutting down or starting), 58 system error. Anything else the server answers
# (22 data exception, 23 integrity, 42 syntax...) refuses these rows and would refuse
# them again.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})


def is_refusal_sqlstate(sqlstate: str | None) -> bool:
    """True when the server refused the statement for its data (retrying cannot help)."""
    return sqlstate is not None and sqlstate[:2] not in TRANSIENT_SQLSTATE_CLASSES


@dataclass(frozen=True)
class WriterCounts:
    """What a writer did with the rows it accepted (for /metrics)."""

    written: int  # rows committed
    refused: int  # rows the database refused alone, dropped (each was logged)
    overflowed: int  # rows dropped because the buffer was full (database away for long)
    pending: int  # rows accepted and not written yet

    @property
    def dropped(self) -> int:
        return self.refused + self.overflowed


class Backlog(Generic[T]):
    """Rows accepted and not written yet, bounded, thread-safe.

    While the database is away rows accumulate here; once ``max_rows`` are waiting a new
    row is refused (and counted) instead of growing the process without limit. The rows
    kept are the oldest, so a recovering database receives a contiguous history.
    """

    def __init__(self, max_rows: int = DEFAULT_BUFFER_ROWS) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.max_rows = max_rows
        self.overflowed = 0
        self._rows: deque[T] = deque()
        self._lock = threading.Lock()

    def append(self, row: T) -> bool:
        """Queue one row; False (counted, and logged the first time) when the buffer is full."""
        with self._lock:
            if len(self._rows) >= self.max_rows:
                self.overflowed += 1
                first = self.overflowed == 1
            else:
                self._rows.append(row)
                return True
        if first:
            logger.error("request-log buffer full (%d rows): new rows are dropped and counted",
                         self.max_rows)  # fmt: skip
        return False

    def take(self, limit: int) -> list[T]:
        """Remove and return up to ``limit`` of the oldest rows."""
        with self._lock:
            count = min(limit, len(self._rows))
            return [self._rows.popleft() for _ in range(count)]

    def __len__(self) -> int:
        return len(self._rows)


class Bisection(Generic[T]):
    """Find the rows the database refuses in a batch it refused, without losing the rest.

    The batch is written in halves, the refused halves split again, down to single rows:
    one bad row in 500 costs ~18 small transactions instead of the batch (one client's
    bad row must not drop other clients' rows). Drive it with ``part()``; report each
    write with ``written()`` or ``refused()``.
    """

    def __init__(self, rows: list[T]) -> None:
        self._parts: list[list[T]] = [rows] if rows else []
        self.refused_rows: list[T] = []

    def part(self) -> list[T] | None:
        """The next rows to write in one transaction, or None when done."""
        return self._parts[-1] if self._parts else None

    def written(self) -> None:
        self._parts.pop()

    def refused(self) -> None:
        part = self._parts.pop()
        if len(part) == 1:
            self.refused_rows.extend(part)
            return
        middle = len(part) // 2
        self._parts += [part[middle:], part[:middle]]  # the first half is written first

    def remaining(self) -> list[T]:
        """Rows not written yet (in order), to retry when the database went away midway."""
        return [row for part in reversed(self._parts) for row in part]


class _Stage(enum.Enum):
    WHOLE = "the batch with its cache hits"
    ROWS = "the rows alone, by bisection"
    HITS = "the cache hits alone"
    DONE = "committed or dropped"


class IsolatingWrite(Generic[R]):
    """The transactions that commit one batch of log rows and cache hits, isolating refusals.

    First the whole batch with its hits in one transaction. If the database refuses it,
    the rows alone by ``Bisection`` (each refused row logged and dropped), then the hits
    alone (dropped if refused too). Sans-I/O, so the thread writer and the asyncio writer
    run the same rule and only commit differently::

        write = IsolatingWrite(rows, hits)
        while (attempt := write.next()) is not None:
            try:
                commit(*attempt)
            except Exception as exc:
                if not is_refusal(exc):
                    keep_for_retry(write.uncommitted())
                    raise
                write.refused(exc)
            else:
                write.committed()
    """

    def __init__(self, rows: list[R], hits: Counter[str]) -> None:
        self._rows = rows
        self._hits = hits
        self._stage = _Stage.WHOLE
        self._bisection: Bisection[R] = Bisection([])
        self.refused_rows: list[R] = []

    def next(self) -> tuple[list[R], Counter[str]] | None:
        """The rows and hits to commit in the next transaction; None when done."""
        if self._stage is _Stage.WHOLE:
            return self._rows, self._hits
        if self._stage is _Stage.ROWS:
            part = self._bisection.part()
            if part is not None:
                return part, Counter()
            self._rows_isolated()
        if self._stage is _Stage.HITS:
            return [], self._hits
        return None

    def committed(self) -> None:
        if self._stage is _Stage.ROWS:
            self._bisection.written()
        else:
            self._stage = _Stage.DONE

    def refused(self, exc: BaseException) -> None:
        """The database refused the last attempt for its data (``exc``)."""
        if self._stage is _Stage.WHOLE:
            logger.warning("postgres refused a request-log batch (%s); isolating the row", exc)
            self._bisection = Bisection(self._rows)
            self._stage = _Stage.ROWS
        elif self._stage is _Stage.ROWS:
            self._bisection.refused()
        elif self._stage is _Stage.HITS:
            logger.error("postgres refused %d cache-hit increments; dropped", len(self._hits))
            self._stage = _Stage.DONE

    def uncommitted(self) -> list[R]:
        """Rows not committed yet (in order), to retry when the database went away midway."""
        if self._stage is _Stage.WHOLE:
            return self._rows
        if self._stage is _Stage.ROWS:
            return self._bisection.remaining()
        return []

    def _rows_isolated(self) -> None:
        self.refused_rows = self._bisection.refused_rows
        for row in self.refused_rows:
            logger.error("postgres refused request-log row %s (%s %s); dropped",
                         row.request_id, row.method, row.endpoint)  # fmt: skip
        self._stage = _Stage.HITS if self._hits else _Stage.DONE


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
