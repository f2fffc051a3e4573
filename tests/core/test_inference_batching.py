"""The batch queue on the real MiniLM model: own results, isolation, cancellation, overload."""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
import time
from concurrent.futures import CancelledError, Future

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.core.embeddings.local import MiniLMModel, TextVector
from backends.core.errors import InvalidInput, Overloaded
from backends.core.inference.batching import Inferred
from backends.core.inference.metrics import InferenceMetrics
from backends.core.inference.timing import collect_timing
from tests.core.inference_fixtures import (
    FailsOnText,
    GatedMiniLM,
    gated_queue,
    reference_model,
    unit,
)

__all__ = ["reference_model"]

TEXTS = [
    "The cat sat on the mat.",
    "A much longer sentence about vector search, batching and padding in one model call.",
    "hi",
    "Quarterly revenue grew in the cloud division while hardware sales fell.",
    "Glaciers are retreating.",
    "Tokyo",
    "How do I reset my password if I no longer have access to my e-mail account?",
    "Bread, butter and a pot of strong tea.",
]
BAD = "a lone surrogate \ud800 has no UTF-8 form"


@pytest.fixture(scope="module")
def unbatched(reference_model: MiniLMModel) -> dict[str, np.ndarray]:
    """Each text's vector computed alone."""
    return {t: reference_model.run([reference_model.prepare(t)[0]])[0][0] for t in TEXTS}


@pytest.fixture(scope="module")
def gated() -> GatedMiniLM:
    return GatedMiniLM()


def _vectors(result: Inferred[TextVector]) -> list[np.ndarray]:
    return [vector for vector, _ in result.outputs]


# A request: 1-4 indexes into TEXTS. An arrival pattern: requests interleaved with "let one
# batch run" steps, under random batch limits.
requests = st.lists(st.integers(0, len(TEXTS) - 1), min_size=1, max_size=4)
steps = st.lists(st.one_of(requests, st.just("run")), min_size=1, max_size=12)


@pytest.mark.parametrize("workers", [1, 2], ids=["1-worker", "2-workers"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pattern=steps,
    max_batch_size=st.integers(1, 8),
    max_batch_tokens=st.sampled_from([16, 64, 8192]),
)
def test_each_request_gets_its_own_vectors(
    gated: GatedMiniLM,
    unbatched: dict[str, np.ndarray],
    workers: int,
    pattern: list[list[int] | str],
    max_batch_size: int,
    max_batch_tokens: int,
) -> None:
    queue = gated_queue(
        gated, max_batch_size=max_batch_size, max_batch_tokens=max_batch_tokens, workers=workers
    )
    submitted: list[tuple[list[str], Future[Inferred[TextVector]]]] = []
    try:
        for step in pattern:
            if isinstance(step, str):  # "run"
                gated.release()
            else:
                texts = [TEXTS[i] for i in step]
                submitted.append((texts, queue.submit(texts)))
        gated.release(1000)  # everything left runs
        for texts, future in submitted:
            result = future.result(timeout=60)
            assert len(result.outputs) == len(texts)
            for text, (vector, tokens) in zip(texts, result.outputs, strict=True):
                assert float(unit(vector) @ unit(unbatched[text])) >= 0.9999
                assert tokens == len(gated.prepare(text)[0])
            assert result.timing.batches >= 1
    finally:
        queue.close()
        while gated.permits.acquire(blocking=False):
            pass  # unused permits must not leak into the next example


class MeetsInside(MiniLMModel):
    """MiniLM whose every call waits until ``parties`` calls are inside it at once: with
    fewer workers than that, the first call times out and its requests fail."""

    def __init__(self, parties: int = 2) -> None:
        super().__init__(intra_op_threads=1)
        self.name = "meets-inside"
        self.inside = threading.Barrier(parties, timeout=30)
        self.batches: list[int] = []

    def run(self, batch: list[npt.NDArray[np.int64]]) -> list[TextVector]:
        self.inside.wait()  # BrokenBarrierError after the timeout: that batch fails
        self.batches.append(len(batch))
        return super().run(batch)


def test_two_workers_run_two_batches_at_once(unbatched: dict[str, np.ndarray]) -> None:
    """Each batch waits inside the model until the other is inside too: only two workers
    running at the same time (on the one shared session) get both through."""
    model = MeetsInside()
    queue = gated_queue(model, workers=2)
    try:
        first = queue.submit([TEXTS[0]])
        while queue.depth:  # a worker took it into its batch, which now waits inside
            time.sleep(0.001)
        second = queue.submit([TEXTS[1], TEXTS[2]])
        for texts, future in [(TEXTS[:1], first), (TEXTS[1:3], second)]:
            vectors = _vectors(future.result(60))
            for text, vector in zip(texts, vectors, strict=True):
                assert float(unit(vector) @ unit(unbatched[text])) >= 0.9999
        assert sorted(model.batches) == [1, 2]
    finally:
        model.inside.abort()
        queue.close()


def test_a_request_split_over_batches_running_at_once_gets_its_own_vectors(
    unbatched: dict[str, np.ndarray],
) -> None:
    """Two workers take two halves of one request (batch limit 2) and finish them at the
    same moment: the request gets each vector in its place, once."""
    model = MeetsInside()
    queue = gated_queue(model, max_batch_size=2, workers=2)
    try:
        texts = TEXTS[:4]
        submitted = time.perf_counter()
        result = queue.run(texts)
        wall = time.perf_counter() - submitted
        assert result.timing.batches == 2 and model.batches == [2, 2]
        # the two batches ran at the same time: the model seconds are counted once
        assert 0 < result.timing.inference_s <= wall
        for text, vector in zip(texts, _vectors(result), strict=True):
            assert float(unit(vector) @ unit(unbatched[text])) >= 0.9999
    finally:
        model.inside.abort()
        queue.close()


def test_random_arrivals_on_two_workers_each_get_their_own_vectors(
    unbatched: dict[str, np.ndarray],
) -> None:
    """Threads submitting requests of 1-4 texts at random moments to two free-running
    workers (no gate): every request gets its own vectors, in its order."""
    rng = random.Random(14)
    model = MiniLMModel(intra_op_threads=1)
    queue = gated_queue(model, max_batch_size=4, workers=2)
    failures: list[str] = []
    answered: list[int] = []

    def caller(seed: int) -> None:
        own = random.Random(seed)
        for _ in range(8):
            texts = [own.choice(TEXTS) for _ in range(own.randint(1, 4))]
            time.sleep(own.random() * 0.005)
            try:
                vectors = _vectors(queue.run(texts))
            except Exception as exc:
                failures.append(repr(exc))
                continue
            for text, vector in zip(texts, vectors, strict=True):
                if float(unit(vector) @ unit(unbatched[text])) < 0.9999:
                    failures.append(text)
            answered.append(len(texts))

    try:
        callers = [threading.Thread(target=caller, args=(rng.random(),)) for _ in range(12)]
        for thread in callers:
            thread.start()
        for thread in callers:
            thread.join(120)
        assert not any(thread.is_alive() for thread in callers)
        assert failures == [] and len(answered) == 12 * 8
    finally:
        queue.close()


def test_requests_waiting_together_share_one_batch() -> None:
    model = GatedMiniLM()
    queue = gated_queue(model)
    try:
        first = queue.submit([TEXTS[0]])
        model.entered.wait(60)  # the worker holds the first request at the gate
        threads_done: list[Inferred[TextVector]] = []
        callers = [
            threading.Thread(target=lambda t=t: threads_done.append(queue.run([t])))  # type: ignore[misc]
            for t in TEXTS[1:]
        ]
        for caller in callers:
            caller.start()
        while queue.depth < len(callers):
            time.sleep(0.001)  # until every caller has queued (nothing timed is asserted)
        model.release(2)
        for caller in callers:
            caller.join(60)
        first.result(60)
        assert [len(batch) for batch in model.batches] == [1, len(callers)]
        assert len(threads_done) == len(callers)
    finally:
        queue.close()


def test_a_bad_input_fails_only_its_own_request(unbatched: dict[str, np.ndarray]) -> None:
    model = GatedMiniLM()
    queue = gated_queue(model)
    try:
        good_before = queue.submit([TEXTS[0], TEXTS[1]])
        bad = queue.submit([TEXTS[2], BAD])
        good_after = queue.submit([TEXTS[3]])
        model.release(10)
        with pytest.raises(InvalidInput, match="cannot be tokenised"):
            bad.result(60)
        for texts, future in ((TEXTS[:2], good_before), (TEXTS[3:4], good_after)):
            vectors = _vectors(future.result(60))
            for text, vector in zip(texts, vectors, strict=True):
                assert float(unit(vector) @ unit(unbatched[text])) >= 0.9999
    finally:
        queue.close()


def test_a_model_failure_on_one_input_fails_only_its_request() -> None:
    """The batch fails as a whole; each item is rerun alone, so its neighbours still succeed."""
    model = FailsOnText(poison=TEXTS[5])
    queue = gated_queue(model)
    try:
        held = queue.submit([TEXTS[0]])
        model.entered.wait(60)
        neighbours = [queue.submit([TEXTS[1]]), queue.submit([TEXTS[2]])]
        poisoned = queue.submit([TEXTS[4], TEXTS[5]])
        model.release(100)
        with pytest.raises(RuntimeError, match="failed on this input"):
            poisoned.result(60)
        assert all(len(f.result(60).outputs) == 1 for f in [held, *neighbours])
    finally:
        queue.close()


def test_a_cancelled_waiting_request_is_dropped_before_it_runs() -> None:
    model = GatedMiniLM()
    metrics = InferenceMetrics()
    queue = gated_queue(model, metrics=metrics)
    try:
        running = queue.submit([TEXTS[0]])
        model.entered.wait(60)
        gone = queue.submit([TEXTS[6]])
        kept = queue.submit([TEXTS[7]])
        assert gone.cancel()  # the caller went away while the request waited
        assert queue.depth == 1
        model.release(10)
        running.result(60)
        kept.result(60)
        assert not model.ran(TEXTS[6]) and model.ran(TEXTS[7])
        cancelled = metrics.registry.get_sample_value(
            "inference_cancelled_total", {"model": model.name}
        )
        assert cancelled == 1
    finally:
        queue.close()


def test_a_cancelled_await_drops_the_waiting_request() -> None:
    model = GatedMiniLM()
    queue = gated_queue(model)

    async def scenario() -> None:
        running = asyncio.create_task(queue.run_async([TEXTS[0]]))
        await asyncio.to_thread(model.entered.wait, 60)
        gone = asyncio.create_task(queue.run_async([TEXTS[6]]))
        await asyncio.sleep(0)  # let it submit
        assert queue.depth == 1
        gone.cancel()  # e.g. the HTTP client disconnected
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert queue.depth == 0
        model.release(10)
        await running

    try:
        asyncio.run(scenario())
        assert not model.ran(TEXTS[6])
    finally:
        queue.close()


def test_an_abandoned_request_drops_its_waiting_calls_and_any_later_one() -> None:
    model = GatedMiniLM()
    queue = gated_queue(model)
    refused: list[BaseException] = []

    def handler() -> None:  # a sync handler in a worker thread, as the backends run them
        for text in (TEXTS[6], TEXTS[7]):
            try:
                queue.run([text])
            except CancelledError as exc:
                refused.append(exc)

    try:
        running = queue.submit([TEXTS[0]])
        model.entered.wait(60)
        with collect_timing() as timing:
            thread = threading.Thread(target=contextvars.copy_context().run, args=(handler,))
            thread.start()
            while queue.depth < 1:
                time.sleep(0.001)  # until the handler's first call waits
            timing.abandon()  # the backend saw its client disconnect
            thread.join(60)
        model.release(10)
        running.result(60)
        assert len(refused) == 2
        assert not model.ran(TEXTS[6]) and not model.ran(TEXTS[7])
        assert queue.depth == 0
    finally:
        queue.close()


def test_a_request_whose_client_left_is_dropped_when_its_batch_would_take_it() -> None:
    """The pull form (a WSGI server is never told): the queue asks ``client_gone`` as the
    request would enter a batch; the neighbour in the same batch still runs."""
    model = GatedMiniLM()
    metrics = InferenceMetrics()
    queue = gated_queue(model, metrics=metrics)
    connected = {TEXTS[6]: False, TEXTS[7]: True}
    outcomes: dict[str, object] = {}

    def handler(text: str) -> None:
        with collect_timing(client_gone=lambda: not connected[text]) as timing:
            try:
                outcomes[text] = len(queue.run([text]).outputs)
            except CancelledError:
                outcomes[text] = ("cancelled", timing.abandoned)

    try:
        running = queue.submit([TEXTS[0]])
        model.entered.wait(60)
        threads = [threading.Thread(target=handler, args=(t,)) for t in connected]
        for thread in threads:
            thread.start()
        while queue.depth < 2:
            time.sleep(0.001)  # both wait behind the running batch
        model.release(10)
        for thread in threads:
            thread.join(60)
        running.result(60)
        assert outcomes == {TEXTS[6]: ("cancelled", True), TEXTS[7]: 1}
        assert not model.ran(TEXTS[6]) and model.ran(TEXTS[7])
        cancelled = metrics.registry.get_sample_value(
            "inference_cancelled_total", {"model": model.name}
        )
        assert cancelled == 1
    finally:
        queue.close()


def test_the_awaitable_path_leaves_the_event_loop_running() -> None:
    model = GatedMiniLM()
    queue = gated_queue(model)

    async def scenario() -> tuple[int, Inferred[TextVector]]:
        task = asyncio.create_task(queue.run_async([TEXTS[1]]))
        ticks = 0
        await asyncio.to_thread(model.entered.wait, 60)  # held inside the model call
        for _ in range(100):  # the loop keeps serving other work meanwhile
            await asyncio.sleep(0)
            ticks += 1
        assert not task.done()
        model.release()
        return ticks, await task

    try:
        with collect_timing() as timing:
            ticks, result = asyncio.run(scenario())
        assert ticks == 100 and len(result.outputs) == 1
        assert timing.calls == 1  # the loop's copy of the context holds the same collector
    finally:
        queue.close()


def test_a_full_queue_refuses_at_once_with_retry_after() -> None:
    model = GatedMiniLM()
    metrics = InferenceMetrics()
    queue = gated_queue(model, queue_size=4, metrics=metrics)
    try:
        held = queue.submit([TEXTS[0]])
        model.entered.wait(60)
        waiting = [queue.submit([t]) for t in TEXTS[1:5]]
        with pytest.raises(Overloaded) as refused:
            queue.submit([TEXTS[5]])
        retry_after = refused.value.retry_after_s
        assert refused.value.status_code == 503 and retry_after is not None and retry_after >= 1
        assert queue.saturation().saturated
        rejected = metrics.registry.get_sample_value(
            "inference_rejected_total", {"model": model.name}
        )
        assert rejected == 1
        model.release(10)
        assert all(f.result(60).outputs for f in [held, *waiting])
    finally:
        queue.close()


@pytest.mark.parametrize("max_wait_s", [0.5, None], ids=["wait-bounded", "size-only"])
def test_a_queue_holding_more_than_its_wait_bound_refuses(max_wait_s: float | None) -> None:
    """Far below its size, a queue refuses a request that would find more than
    max_queue_wait_s of work ahead of it at the model's measured speed; while what is
    ahead fits in the next batch, a request is always taken."""
    model = GatedMiniLM()
    queue = gated_queue(model, max_batch_size=2, max_queue_wait_s=max_wait_s)
    try:
        first = queue.submit([TEXTS[0]])
        model.entered.wait(60)
        time.sleep(0.3)  # the measured speed: at most one item per 0.3 s
        model.release()
        first.result(60)
        held = queue.submit([TEXTS[1]])
        model.entered.wait(60)
        fit = [queue.submit([t]) for t in TEXTS[2:5]]  # 2, then 3 items: ahead fits a batch
        if max_wait_s is None:
            accepted = [queue.submit([TEXTS[5]])]
        else:
            with pytest.raises(Overloaded) as refused:
                queue.submit([TEXTS[5]])  # 3 items ahead: >= 0.9 s at that speed
            assert "s of work queued" in str(refused.value)
            assert refused.value.retry_after_s is not None and refused.value.retry_after_s >= 1
            assert queue.saturation().saturated
            accepted = []
        model.release(10)
        assert all(f.result(60).outputs for f in [held, *fit, *accepted])
    finally:
        model.release(10)
        queue.close()


def test_threads_past_the_caller_cap_are_refused_at_once_with_retry_after() -> None:
    """A threaded server's request threads blocked on the model are capped (the rest stay
    free for /health): the next caller is a prompt 503, and a place frees when one ends."""
    model = GatedMiniLM()
    metrics = InferenceMetrics()
    queue = gated_queue(model, max_callers=2, metrics=metrics)
    pool = [threading.Thread(target=queue.run, args=([t],)) for t in TEXTS[:2]]
    try:
        for thread in pool:
            thread.start()
        deadline = time.monotonic() + 60
        while queue.callers.callers < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(Overloaded) as refused:
            queue.run([TEXTS[2]])
        retry_after = refused.value.retry_after_s
        assert refused.value.status_code == 503 and retry_after is not None and retry_after >= 1
        rejected = metrics.registry.get_sample_value(
            "inference_rejected_total", {"model": model.name}
        )
        assert rejected == 1
        model.release(10)
        for thread in pool:
            thread.join(60)
        assert queue.run([TEXTS[2]]).outputs  # the places were given back
    finally:
        model.release(10)
        queue.close()


def test_an_empty_queue_takes_a_request_larger_than_its_capacity() -> None:
    model = GatedMiniLM()
    queue = gated_queue(model, queue_size=2, max_batch_size=4)
    try:
        model.release(100)
        result = queue.run(TEXTS)
        assert len(result.outputs) == len(TEXTS) and result.timing.batches == 2
    finally:
        queue.close()


def test_the_sync_path_reports_its_timing_to_the_collector() -> None:
    model = GatedMiniLM()
    queue = gated_queue(model)
    try:
        model.release(10)
        with collect_timing() as timing:
            first = queue.run([TEXTS[0]])
            queue.run([TEXTS[1], TEXTS[2]])
        assert timing.calls == 2
        assert timing.inference_s >= first.timing.inference_s > 0
        assert first.timing.queue_s >= 0
    finally:
        queue.close()


def test_close_fails_the_waiting_requests() -> None:
    model = GatedMiniLM()
    queue = gated_queue(model)
    held = queue.submit([TEXTS[0]])
    model.entered.wait(60)
    waiting = queue.submit([TEXTS[1]])
    queue.close(timeout=0)  # the worker is still inside the first batch
    model.release()
    held.result(60)
    with pytest.raises(Exception, match="shutting down"):
        waiting.result(60)
    assert "closed" in repr(queue)
