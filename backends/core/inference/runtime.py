"""The process's inference runtime: one batch queue per local model, one metrics registry."""

from __future__ import annotations

import os
import threading
from typing import Any, TypeVar

from backends.core.errors import Overloaded
from backends.core.inference.batching import (
    BatchLimits,
    BatchModel,
    BatchQueue,
    CallerGate,
    QueueSaturation,
)
from backends.core.inference.metrics import InferenceMetrics
from backends.core.settings import EngineSettings

ItemT = TypeVar("ItemT")
PreparedT = TypeVar("PreparedT")
OutT = TypeVar("OutT")


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class InferenceRuntime:
    """Owns every local model's queue in this process; build one per engine, close it once."""

    def __init__(self, settings: EngineSettings) -> None:
        self.limits = BatchLimits(
            queue_size=settings.inference_queue_size,
            max_batch_size=settings.inference_max_batch_size,
            max_batch_tokens=settings.inference_max_batch_tokens,
            max_queue_wait_s=settings.inference_max_queue_wait_s,
        )
        # The threads a model may compute on: as many as there are cores, no more. A model
        # with one worker (the LLM, Whisper) gives them all to its one batch; the embedding
        # model's ``workers`` share them (``intra_op_threads``).
        self.threads = settings.inference_threads or usable_cores()
        # Batches of the embedding model that run at once, one per thread unless set: on 2
        # cores 2 workers x 1 intra-op thread did more per CPU second than 1 x 2.
        self.workers = settings.inference_workers or self.threads
        self.metrics = InferenceMetrics()
        # shared by every model's queue: a thread waits on one model at a time
        self.callers = CallerGate(settings.inference_max_callers)
        self.nice = settings.inference_nice or 0
        self._queues: dict[str, BatchQueue[Any, Any, Any]] = {}
        self._lock = threading.Lock()

    def intra_op_threads(self, workers: int) -> int:
        """Threads each of ``workers`` concurrent batches may compute on."""
        return max(1, self.threads // workers)

    def queue(
        self,
        model: BatchModel[ItemT, PreparedT, OutT],
        *,
        max_batch_size: int | None = None,
        queue_size: int | None = None,
        bound_wait: bool = True,
        workers: int = 1,
    ) -> BatchQueue[ItemT, PreparedT, OutT]:
        """The queue that runs ``model`` (created on first ask; one per model name).

        ``max_batch_size=1`` is for models that do not batch (Whisper): they still get the
        bounded queue, the single worker and the metrics. Either limit left out is the
        runtime's. ``bound_wait=False`` drops INFERENCE_MAX_QUEUE_WAIT_S for models whose
        one item takes seconds (the LLM, Whisper): their queue is bounded by its size only.
        ``workers`` batches run at once (only for a model whose ``run`` is thread-safe; its
        threads sized with ``intra_op_threads(workers)``).
        """
        with self._lock:
            queue = self._queues.get(model.name)
            if queue is None:
                limits = BatchLimits(
                    queue_size or self.limits.queue_size,
                    max_batch_size or self.limits.max_batch_size,
                    self.limits.max_batch_tokens,
                    self.limits.max_queue_wait_s if bound_wait else None,
                )
                queue = BatchQueue(
                    model, limits, self.metrics, self.callers, workers=workers, nice=self.nice
                )
                self._queues[model.name] = queue
            if queue.model is not model:
                raise ValueError(f"a different model named {model.name!r} already has a queue")
            return queue

    def saturation(self) -> list[QueueSaturation]:
        """Each model queue's depth against its capacity, for readiness reports."""
        with self._lock:
            queues = list(self._queues.values())
        return [q.saturation() for q in queues]

    def depth(self) -> int:
        """Items waiting in every model's queue."""
        with self._lock:
            queues = list(self._queues.values())
        return sum(q.depth for q in queues)

    def refuse(self, waiting: int) -> Overloaded:
        """The 503 for a request refused before it reached a queue, with ``waiting``
        requests already ahead of it (e.g. for a server thread to run them in).

        Counted and timed by the deepest queue, as if its own queue had refused it.
        """
        with self._lock:
            queues = list(self._queues.values())
        message = f"{waiting} model requests are waiting in this process; retry shortly"
        if not queues:
            return Overloaded(message)
        deepest = max(queues, key=lambda q: q.depth)
        return deepest.refuse(message, deepest.depth + waiting)

    def close(self) -> None:
        """Fail what still waits and stop the workers."""
        with self._lock:
            queues = list(self._queues.values())
        for queue in queues:
            queue.close()
