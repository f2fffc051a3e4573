"""One model's bounded queue and the worker threads that run it in dynamic batches.

Callers submit a request (one or more items, e.g. the texts of one HTTP request) and get
a future. A free worker thread takes the oldest waiting items, as many as fit the batch
limits, and runs them in one model call; whatever arrives meanwhile waits for the next
batch, as in text-embeddings-inference. There is no deliberate delay: under low load a
batch is one request, under high load the queue fills batches by itself.

Only the workers call the model, so at most ``workers`` batches run at once and the
model's threads are sized for them (a pool of callers each running the model
oversubscribed the cores). With several workers (the embedding model: one per core, each
batch on one intra-op thread) one batch is formed while another computes, and batches on
separate cores scale better than one batch split across them. One worker forms a batch
at a time, so each takes the oldest items still waiting.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from backends.core.errors import InvalidInput, Overloaded, ProviderUnavailable
from backends.core.inference.metrics import InferenceMetrics
from backends.core.inference.timing import (
    InferenceTiming,
    RequestTiming,
    current_request,
    note_queued,
    record_timing,
)

logger = logging.getLogger(__name__)
ItemT = TypeVar("ItemT")
PreparedT = TypeVar("PreparedT")
OutT = TypeVar("OutT")
ItemT_contra = TypeVar("ItemT_contra", contravariant=True)

# Retry-After is whole seconds; a drain estimate beyond this is not worth promising.
_MAX_RETRY_AFTER_S = 30
# A queue this full (or one that rejected within the window) is reported as saturated.
_SATURATED_FRACTION = 0.9
_REJECTION_WINDOW_S = 10.0


class BatchModel(Protocol[ItemT_contra, PreparedT, OutT]):
    """A model the workers can run in batches; only the queue's worker threads call it
    (``run`` from several at once when the queue has more than one worker)."""

    name: str

    def prepare(self, item: ItemT_contra) -> tuple[PreparedT, int]:
        """One item made ready (e.g. tokenised) and its cost in tokens; raising fails only
        the item's own request."""
        ...

    def run(self, batch: list[PreparedT]) -> list[OutT]:
        """Outputs for the prepared items, in order."""
        ...


@dataclass(frozen=True, slots=True)
class BatchLimits:
    queue_size: int  # items waiting, across requests
    max_batch_size: int  # items per model call
    # Padded cost of a call (rows x longest row), like TEI's --max-batch-tokens; an item
    # over the budget on its own still runs, alone.
    max_batch_tokens: int
    # Seconds a newly queued request may expect to wait (the items ahead of it at the
    # model's measured speed) before it is refused instead; None: bounded by queue_size
    # only (models whose one item takes seconds: the LLM, Whisper).
    max_queue_wait_s: float | None = None


@dataclass(frozen=True, slots=True)
class Inferred(Generic[OutT]):
    """A request's outputs, one per submitted item and in order, with its timing."""

    outputs: list[OutT]
    timing: InferenceTiming


@dataclass(frozen=True, slots=True)
class QueueSaturation:
    model: str
    depth: int
    capacity: int
    saturated: bool


class _Request(Generic[OutT]):
    __slots__ = (
        "batches",
        "busy_until",
        "future",
        "inference_s",
        "outputs",
        "remaining",
        "submitted",
        "web",
    )

    def __init__(self, size: int, web: RequestTiming | None) -> None:
        self.web = web  # the web request it serves, asked whether its client is still there
        self.future: Future[Inferred[OutT]] = Future()
        self.outputs: list[OutT | None] = [None] * size
        self.remaining = size
        self.submitted = time.perf_counter()
        self.inference_s = 0.0  # wall seconds its batches ran (overlapping ones once)
        self.busy_until = 0.0  # when the last of its batches settled so far ended
        self.batches = 0


class _Item(Generic[ItemT, PreparedT, OutT]):
    __slots__ = ("cost", "index", "item", "prepared", "ready", "request")

    def __init__(self, request: _Request[OutT], index: int, item: ItemT) -> None:
        self.request = request
        self.index = index
        self.item = item
        self.prepared: PreparedT
        self.cost = 0
        self.ready = False


class CallerGate:
    """How many threads may block on the process's models at once (None: no cap).

    A threaded server (gunicorn gthread) holds one request thread per waiting call; with
    every thread waiting on a model, /health waits too. Past the cap a call is refused at
    once (503 + Retry-After), so some threads always stay free for everything else.
    """

    def __init__(self, max_callers: int | None) -> None:
        self.max_callers = max_callers
        self._callers = 0
        self._lock = threading.Lock()

    @property
    def callers(self) -> int:
        return self._callers

    def enter(self) -> bool:
        """Take a place; False when the cap is reached."""
        with self._lock:
            if self.max_callers is not None and self._callers >= self.max_callers:
                return False
            self._callers += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._callers -= 1


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value by ``nice`` (Linux only: elsewhere a process
    has one priority for all its threads, so nothing is changed).

    For a model worker: its batches are the only work of the process that is not waiting
    for a client, so they can take the CPU time the web threads leave. At equal priority
    a /health request or a request's pre- and post-processing waited for the scheduler
    behind two threads computing batches (Django, 64 uncached embedding connections on 2
    cores: /health p99 112-375 ms at nice 0, 55-151 ms at nice 10, interleaved rounds).
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError:  # not permitted here (a sandbox): the thread keeps its priority
        logger.warning("could not lower the priority of a model thread", exc_info=True)


class BatchQueue(Generic[ItemT, PreparedT, OutT]):
    """Thread-safe; the workers start with the first request and stop in ``close``.

    ``workers`` threads run batches, each one at a time: a model whose ``run`` is not
    thread-safe (llama.cpp, Whisper) keeps the default of one.
    """

    def __init__(
        self,
        model: BatchModel[ItemT, PreparedT, OutT],
        limits: BatchLimits,
        metrics: InferenceMetrics,
        callers: CallerGate | None = None,
        *,
        workers: int = 1,
        nice: int = 0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a queue needs at least one worker, not {workers}")
        self.model = model
        self.limits = limits
        self.workers = workers
        self.nice = nice  # of the worker threads (``lower_priority``)
        self._metrics = metrics
        self.callers = callers or CallerGate(None)
        self._pending: deque[_Item[ItemT, PreparedT, OutT]] = deque()
        self._cond = threading.Condition()
        # Held by the one worker forming a batch: only it takes items from the head.
        self._forming = threading.Lock()
        # Held while a request's outputs or failure are recorded: a request's items may be
        # in two batches finishing at once on two workers.
        self._settling = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        # Moving average of one worker's speed (items/s of a batch, measured while the
        # other workers run theirs); the queue drains ``workers`` times as fast.
        self._items_per_s = 0.0
        self._last_rejection = -math.inf
        metrics.queue_depth.labels(model.name).set_function(lambda: len(self._pending))

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._threads else "idle"
        return f"<BatchQueue {self.model.name} {state} workers={self.workers} depth={self.depth}>"

    @property
    def depth(self) -> int:
        """Items waiting (not yet taken into a batch)."""
        return len(self._pending)

    def saturation(self) -> QueueSaturation:
        depth, capacity = self.depth, self.limits.queue_size
        recent = time.monotonic() - self._last_rejection < _REJECTION_WINDOW_S
        full = depth >= capacity * _SATURATED_FRACTION
        return QueueSaturation(self.model.name, depth, capacity, full or recent)

    def submit(self, items: Sequence[ItemT]) -> Future[Inferred[OutT]]:
        """Queue one request; Overloaded (503) at once when its items do not fit.

        An empty queue takes a request of any size, so a large one is never refused forever.
        Cancelling the future before the request's first batch drops it from the queue, and
        so does a client that left (the enclosing ``collect_timing``'s ``client_gone``).
        """
        if not items:
            raise InvalidInput("nothing to run: the request has no items")
        request: _Request[OutT] = _Request(len(items), current_request())
        with self._cond:
            if self._closed:
                raise ProviderUnavailable(f"the {self.model.name} model is shutting down")
            depth = len(self._pending)
            if depth and depth + len(items) > self.limits.queue_size:
                raise self.refuse(
                    f"the {self.model.name} model is at capacity ({depth} items queued); "
                    "retry shortly",
                    depth + len(items),
                )
            wait_s = self._wait_past_bound_s(depth)
            if wait_s is not None:
                raise self.refuse(
                    f"the {self.model.name} model has about {wait_s:.1f} s of work queued "
                    f"({depth} items); retry shortly",
                    depth + len(items),
                )
            self._pending.extend(_Item(request, i, item) for i, item in enumerate(items))
            if not self._threads:
                self._start_workers()
            self._cond.notify()
        request.future.add_done_callback(lambda f: self._forget_if_cancelled(request))
        return request.future

    def run(self, items: Sequence[ItemT]) -> Inferred[OutT]:
        """Submit and block this thread until the result.

        CancelledError when the web request was abandoned (its client went away) while
        this call waited: the call left the queue without running. Overloaded (503) at
        once when the queue is full or the process's threads waiting on models are at
        their cap (``CallerGate``).
        """
        if not self.callers.enter():
            raise self.refuse(
                f"the {self.model.name} model has {self.callers.max_callers} requests "
                "waiting in this process; retry shortly",
                self.depth + len(items),
            )
        try:
            future = self.submit(items)
            note_queued(future)
            try:
                result = future.result()
            except BaseException:
                # E.g. the worker process told to stop mid-wait: a waiting request leaves
                # the queue (a no-op once it runs).
                future.cancel()
                raise
        finally:
            self.callers.leave()
        record_timing(result.timing)
        return result

    async def run_async(self, items: Sequence[ItemT]) -> Inferred[OutT]:
        """Submit and await without blocking the event loop; a cancelled task drops a
        request that is still waiting (asyncio.wrap_future passes the cancel on), and so
        does ``RequestTiming.abandon`` (asyncio.CancelledError here)."""
        future = self.submit(items)
        note_queued(future)
        result = await asyncio.wrap_future(future)
        record_timing(result.timing)
        return result

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking requests, fail the waiting ones and stop the workers."""
        with self._cond:
            self._closed = True
            waiting = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for item in waiting:
            error = ProviderUnavailable(f"the {self.model.name} model is shutting down")
            self._fail(item.request, error)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    # --- worker side -------------------------------------------------------------------

    def refuse(self, message: str, queued: int) -> Overloaded:
        """The 503 to raise (counted), its Retry-After the time ``queued`` items take."""
        self._last_rejection = time.monotonic()
        self._metrics.rejected.labels(self.model.name).inc()
        return Overloaded(message, retry_after_s=self._retry_after_s(queued))

    def _wait_past_bound_s(self, ahead: int) -> float | None:
        """How long the ``ahead`` items queued before a new request take at the model's
        measured speed, when that is over ``max_queue_wait_s`` (else None). The bound is
        on the wait before a request starts, not on its own size (a bulk index of 100
        chunks is its own work); items that fit in the next batch never count, nor does
        anything before the first batch measured the speed."""
        limit = self.limits.max_queue_wait_s
        drain = self._drain_per_s()
        if limit is None or ahead <= self.limits.max_batch_size or drain <= 0:
            return None
        wait_s = ahead / drain
        return wait_s if wait_s > limit else None

    def _retry_after_s(self, queued: int) -> int:
        drain = self._drain_per_s()
        if drain <= 0:
            return 1
        return max(1, min(_MAX_RETRY_AFTER_S, math.ceil(queued / drain)))

    def _drain_per_s(self) -> float:
        """Items/s the queue drains at when every worker is busy (wall seconds): each
        batch's speed is measured while the other workers run theirs, so they add up."""
        return self._items_per_s * self.workers

    def _forget_if_cancelled(self, request: _Request[OutT]) -> None:
        """A request cancelled before its first batch (the only time a future can be):
        its items leave the queue, and it is counted once."""
        if not request.future.cancelled():
            return
        with self._cond:
            self._pending = deque(i for i in self._pending if i.request is not request)
        self._metrics.cancelled.labels(self.model.name).inc()

    def _start_workers(self) -> None:
        for n in range(self.workers):
            suffix = "" if self.workers == 1 else f"-{n}"
            thread = threading.Thread(
                target=self._work, name=f"inference-{self.model.name}{suffix}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        lower_priority(self.nice)
        while True:
            # One worker forms a batch at a time (waiting for items if none wait); the
            # others run theirs meanwhile, and the next free one forms the next.
            with self._forming:
                batch, started = self._next_batch()
            if not batch:
                return
            self._run(batch, started)

    def _next_batch(self) -> tuple[list[_Item[ItemT, PreparedT, OutT]], float]:
        """The oldest waiting items that fit the limits (blocks while none wait)."""
        limits = self.limits
        batch: list[_Item[ItemT, PreparedT, OutT]] = []
        longest = 0
        started = 0.0
        while len(batch) < limits.max_batch_size:
            with self._cond:
                while not self._pending and not batch and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    break
                item = self._pending[0]
            if not batch:
                started = time.perf_counter()
            # Prepared outside the lock (tokenising must not hold up submitters); only the
            # forming worker removes from the head, but a cancel may have removed the item
            # meanwhile.
            if not item.ready and not self._prepare(item):
                continue
            if batch and max(longest, item.cost) * (len(batch) + 1) > limits.max_batch_tokens:
                break
            with self._cond:
                if not self._pending or self._pending[0] is not item:
                    continue
                self._pending.popleft()
            with self._settling:  # another worker may be failing this request right now
                if item.request.future.done():
                    continue  # its request already failed on an earlier item
                if not item.request.future.running() and not self._start(item.request):
                    continue
            batch.append(item)
            longest = max(longest, item.cost)
        return batch, started

    def _start(self, request: _Request[OutT]) -> bool:
        """Mark the request running; False if its caller cancelled it in the meantime or
        its web request's client went away (it leaves the queue, its caller gets
        CancelledError)."""
        if request.web is not None and request.web.gone():
            request.future.cancel()  # a no-op if abandoning it did; _forget_if_cancelled
            return False
        return request.future.set_running_or_notify_cancel()

    def _prepare(self, item: _Item[ItemT, PreparedT, OutT]) -> bool:
        try:
            item.prepared, item.cost = self.model.prepare(item.item)
            item.ready = True
        except Exception as exc:  # the item's own fault: only its request fails
            with self._cond:
                self._pending = deque(i for i in self._pending if i.request is not item.request)
            self._fail(item.request, exc)
            return False
        return True

    def _run(self, batch: list[_Item[ItemT, PreparedT, OutT]], started: float) -> None:
        prepared = [item.prepared for item in batch]
        outcomes: list[OutT | BaseException]
        try:
            outcomes = list(self.model.run(prepared))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{self.model.name} returned {len(outcomes)} outputs")
        except Exception as exc:
            # One bad item must not fail its neighbours: rerun each on its own.
            outcomes = [exc] if len(batch) == 1 else [self._run_alone(i) for i in batch]
        ended = time.perf_counter()
        seconds = ended - started
        self._metrics.batch_size.labels(self.model.name).observe(len(batch))
        self._metrics.inference_seconds.labels(self.model.name).observe(seconds)
        speed = len(batch) / max(seconds, 1e-6)  # the first batch sets it, later ones move it
        with self._settling:
            self._items_per_s = (
                speed if self._items_per_s <= 0 else 0.8 * self._items_per_s + 0.2 * speed
            )
            self._settle(batch, outcomes, started, ended)

    def _settle(
        self,
        batch: list[_Item[ItemT, PreparedT, OutT]],
        outcomes: list[OutT | BaseException],
        started: float,
        ended: float,
    ) -> None:
        """Each item's outcome into its request (under ``_settling``)."""
        for request in {id(item.request): item.request for item in batch}.values():
            # Two of its batches running at once on two workers count once: the request's
            # model time never exceeds its wall time (Server-Timing adds up).
            request.inference_s += max(0.0, ended - max(started, request.busy_until))
            request.busy_until = max(request.busy_until, ended)
            request.batches += 1
        for item, outcome in zip(batch, outcomes, strict=True):
            request = item.request
            if request.future.done():
                continue
            if isinstance(outcome, BaseException):
                with self._cond:
                    self._pending = deque(i for i in self._pending if i.request is not request)
                self._fail(request, outcome)
                continue
            request.outputs[item.index] = outcome
            request.remaining -= 1
            if request.remaining == 0:
                self._finish(request)

    def _run_alone(self, item: _Item[ItemT, PreparedT, OutT]) -> OutT | BaseException:
        try:
            (output,) = self.model.run([item.prepared])
            return output
        except Exception as exc:
            return exc

    def _finish(self, request: _Request[OutT]) -> None:
        total = time.perf_counter() - request.submitted
        timing = InferenceTiming(
            queue_s=max(total - request.inference_s, 0.0),
            inference_s=request.inference_s,
            batches=request.batches,
        )
        self._metrics.queue_seconds.labels(self.model.name).observe(timing.queue_s)
        outputs: list[OutT] = request.outputs  # type: ignore[assignment]  # all filled
        request.future.set_result(Inferred(outputs, timing))

    def _fail(self, request: _Request[OutT], exc: BaseException) -> None:
        # A model raises a domain error (InvalidInput) for an input it cannot take; anything
        # else is a fault of the model and stays one (a 500), but still only this request's.
        with self._settling:
            if request.future.done():
                return
            if not request.future.running() and not request.future.set_running_or_notify_cancel():
                return
            request.future.set_exception(exc)
