"""How the runtime shares its threads out: embedding workers x intra-op threads, one worker
for the models that cannot run two calls at once."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from backends.core.embeddings.local import LocalMiniLMProvider
from backends.core.inference.runtime import InferenceRuntime
from backends.core.llm.local import LocalLlamaProvider
from backends.core.transcription.local import LocalWhisperProvider
from tests.core.engine_fixtures import engine_settings


@pytest.mark.parametrize(
    ("threads", "workers", "expected_workers", "expected_intra_op"),
    [
        (2, None, 2, 1),  # the default: one batch per thread, each on one thread
        (2, 1, 1, 2),  # one batch at a time on every thread
        (4, 2, 2, 2),
        (3, 2, 2, 1),  # never more threads than INFERENCE_THREADS, never fewer than 1
        (1, 4, 4, 1),
    ],
)
def test_embedding_workers_share_the_threads(
    threads: int, workers: int | None, expected_workers: int, expected_intra_op: int
) -> None:
    runtime = InferenceRuntime(
        engine_settings(inference_threads=threads, inference_workers=workers)
    )
    provider = LocalMiniLMProvider(runtime)
    try:
        assert runtime.queue(provider.onnx).workers == expected_workers
        assert provider.onnx.intra_op_threads == expected_intra_op
    finally:
        runtime.close()


def test_the_llm_and_whisper_keep_one_worker_on_every_thread(tmp_path: Path) -> None:
    """llama.cpp and Whisper run one call at a time: more embedding workers change
    nothing for them."""
    runtime = InferenceRuntime(engine_settings(inference_threads=2, inference_workers=2))
    whisper = LocalWhisperProvider(tmp_path, runtime, max_seconds=60, queue_size=4)
    llm = LocalLlamaProvider(tmp_path / "model.Q4_1.gguf", runtime)
    try:
        assert runtime.queue(whisper).workers == 1
        assert runtime.queue(llm).workers == 1
        assert runtime.threads == 2  # Whisper's cpu_threads: the runtime's, undivided
    finally:
        runtime.close()


class _Priorities:
    """A model that notes the nice value of the thread that runs each batch."""

    name = "priorities"

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []  # (native thread id, nice)

    def prepare(self, item: str) -> tuple[str, int]:
        return item, 1

    def run(self, batch: list[str]) -> list[int]:
        tid = threading.get_native_id()
        self.seen.append((tid, os.getpriority(os.PRIO_PROCESS, tid)))
        return [len(batch)] * len(batch)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
@pytest.mark.parametrize("nice", [0, 7])
def test_model_threads_run_at_inference_nice_and_nothing_else_does(nice: int) -> None:
    """The model's worker threads are ``nice`` above the process; the caller is unchanged."""
    runtime = InferenceRuntime(engine_settings(inference_nice=nice, inference_workers=2))
    model = _Priorities()
    caller_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    try:
        runtime.queue(model, workers=2).run(["a", "b"])
    finally:
        runtime.close()
    ((tid, seen),) = set(model.seen)
    assert tid != threading.get_native_id()
    assert seen == caller_before + nice
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller_before
