"""The real MiniLM model behind a gate the test opens, so batches form exactly when it says."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from backends.core.embeddings.local import MiniLMModel, TextVector
from backends.core.inference.batching import BatchLimits, BatchQueue, CallerGate
from backends.core.inference.metrics import InferenceMetrics
from backends.core.inference.runtime import usable_cores

# A test that forgets to open the gate fails after this long instead of hanging.
_GATE_TIMEOUT_S = 60

Ids = npt.NDArray[np.int64]


class GatedMiniLM(MiniLMModel):
    """MiniLM whose every batch waits for one permit; records each batch it ran."""

    def __init__(self, name: str = "gated-minilm") -> None:
        super().__init__(intra_op_threads=usable_cores())
        self.name = name
        self.permits = threading.Semaphore(0)
        self.entered = threading.Event()  # set when a batch is waiting at the gate
        self.batches: list[list[list[int]]] = []  # token ids of each batch that ran

    def release(self, batches: int = 1) -> None:
        self.permits.release(batches)

    def run(self, batch: list[Ids]) -> list[TextVector]:
        self.entered.set()
        if not self.permits.acquire(timeout=_GATE_TIMEOUT_S):
            raise TimeoutError("the test never opened the gate")
        self.entered.clear()
        self.batches.append([ids.tolist() for ids in batch])
        return super().run(batch)

    def ran(self, text: str) -> bool:
        """Whether a batch carried ``text``."""
        ids = self.prepare(text)[0].tolist()
        return any(ids in batch for batch in self.batches)


class FailsOnText(GatedMiniLM):
    """Raises inside the model call for one text: a model-side failure, not a tokeniser one."""

    def __init__(self, poison: str) -> None:
        super().__init__("fails-on-text")
        self._poison = self.prepare(poison)[0].tolist()

    def run(self, batch: list[Ids]) -> list[TextVector]:
        if any(ids.tolist() == self._poison for ids in batch):
            raise RuntimeError("the model failed on this input")
        return super().run(batch)


def gated_queue(
    model: MiniLMModel,
    *,
    queue_size: int = 256,
    max_batch_size: int = 32,
    max_batch_tokens: int = 8192,
    metrics: InferenceMetrics | None = None,
    max_callers: int | None = None,
    max_queue_wait_s: float | None = None,
    workers: int = 1,
) -> BatchQueue[str, Ids, TextVector]:
    limits = BatchLimits(queue_size, max_batch_size, max_batch_tokens, max_queue_wait_s)
    return BatchQueue(
        model, limits, metrics or InferenceMetrics(), CallerGate(max_callers), workers=workers
    )


def unit(vector: Any) -> npt.NDArray[np.float64]:
    v = np.asarray(vector, dtype=np.float64)
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def reference_model() -> MiniLMModel:
    """The same model, called directly one text at a time (no queue, no batching)."""
    model = MiniLMModel(intra_op_threads=usable_cores())
    model.load()
    return model
