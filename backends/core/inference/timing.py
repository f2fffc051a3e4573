"""Where a request's model time went: waiting in a queue vs inside model calls.

The runtime returns an ``InferenceTiming`` with each result. A web request may make several
model calls (RAG query, summary), so a backend wraps its handler in ``collect_timing()``
and reads the sum afterwards, e.g. for a ``Server-Timing`` header; the services in between
need not pass timing along. The collector travels in a context variable, which
``anyio.to_thread.run_sync`` and ``asyncio.to_thread`` copy into the worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# The status a backend answers (and logs) for a request whose client left before its
# answer, e.g. while its model call waited (nginx's 499); nobody reads the answer.
CLIENT_CLOSED = 499


@dataclass(frozen=True, slots=True)
class InferenceTiming:
    """One model request: seconds queued, seconds in the batches that carried it."""

    queue_s: float
    inference_s: float
    batches: int

    @property
    def total_s(self) -> float:
        return self.queue_s + self.inference_s


@dataclass(slots=True)
class RequestTiming:
    """The sum over every model call one web request made, and the calls it has queued.

    The queued calls are kept so that a backend which learns that the client went away
    can ``abandon()`` them: a call still waiting leaves its queue (its batch never carries
    it) and the handler's thread gets CancelledError instead of a result. A backend told
    of a disconnect calls ``abandon()`` (FastAPI: ASGI's http.disconnect); one that must
    ask gives ``client_gone``, which the runtime calls before a call enters a batch
    (Django: a peek at the client's socket).
    """

    queue_s: float = 0.0
    inference_s: float = 0.0
    calls: int = 0
    abandoned: bool = False
    client_gone: Callable[[], bool] | None = None
    _queued: list[Future[Any]] = field(default_factory=list)

    def add(self, timing: InferenceTiming) -> None:
        self.queue_s += timing.queue_s
        self.inference_s += timing.inference_s
        self.calls += 1

    def queued(self, future: Future[Any]) -> None:
        """Note a model call this request waits for (cancelled at once if abandoned)."""
        self._queued.append(future)
        if self.abandoned:
            future.cancel()

    def abandon(self) -> None:
        """The client went away: drop every call still waiting, and any made later."""
        self.abandoned = True
        for future in list(self._queued):  # the handler's thread may append meanwhile
            future.cancel()  # a no-op once the call's batch has started

    def gone(self) -> bool:
        """Whether the client went away (asking ``client_gone``); abandons if it did."""
        if not self.abandoned and self.client_gone is not None and self.client_gone():
            self.abandon()
        return self.abandoned


_current: ContextVar[RequestTiming | None] = ContextVar("inference_timing", default=None)


@contextmanager
def collect_timing(client_gone: Callable[[], bool] | None = None) -> Iterator[RequestTiming]:
    """Sum the timing of the model calls made inside this block (in this context);
    ``client_gone`` says whether the web request's client left (see ``RequestTiming``)."""
    timing = RequestTiming(client_gone=client_gone)
    token = _current.set(timing)
    try:
        yield timing
    finally:
        _current.reset(token)


def current_request() -> RequestTiming | None:
    """The enclosing ``collect_timing()``'s collector: the web request a call serves."""
    return _current.get()


def note_queued(future: Future[Any]) -> None:
    """Tell the enclosing ``collect_timing()``, if any, about a call now waiting."""
    collector = _current.get()
    if collector is not None:
        collector.queued(future)


def record_timing(timing: InferenceTiming) -> None:
    """Add one model call to the enclosing ``collect_timing()``, if there is one."""
    collector = _current.get()
    if collector is not None:
        collector.add(timing)
