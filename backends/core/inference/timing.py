"""Where a request's model time went: waiting in a queue vs inside model calls.

The runtime returns an ``InferenceTiming`` with each result. A web request may make several
model calls (RAG query, summary), so a backend wraps its handler in ``collect_timing()``
and reads the sum afterwards, e.g. for a ``Server-Timing`` header; the services in between
need not pass timing along. The collector travels in a context variable, which
``anyio.to_thread.run_sync`` and ``asyncio.to_thread`` copy into the worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


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
    """The sum over every model call one web request made."""

    queue_s: float = 0.0
    inference_s: float = 0.0
    calls: int = 0

    def add(self, timing: InferenceTiming) -> None:
        self.queue_s += timing.queue_s
        self.inference_s += timing.inference_s
        self.calls += 1


_current: ContextVar[RequestTiming | None] = ContextVar("inference_timing", default=None)


@contextmanager
def collect_timing() -> Iterator[RequestTiming]:
    """Sum the timing of the model calls made inside this block (in this context)."""
    timing = RequestTiming()
    token = _current.set(timing)
    try:
        yield timing
    finally:
        _current.reset(token)


def record_timing(timing: InferenceTiming) -> None:
    """Add one model call to the enclosing ``collect_timing()``, if there is one."""
    collector = _current.get()
    if collector is not None:
        collector.add(timing)
