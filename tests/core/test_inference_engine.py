"""The engine's runtime: every embedding use case runs through it; saturation and metrics."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.core.embeddings.local import LOCAL_MODEL_ID
from backends.core.engine import Engine
from backends.core.inference.metrics import CONTENT_TYPE
from backends.core.rag.results import DocumentInput
from backends.core.transcription.local import LOCAL_MODEL as LOCAL_WHISPER
from tests.core.engine_fixtures import engine_settings
from tests.core.inference_fixtures import GatedMiniLM


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A started engine over a local-mode Qdrant, no database."""
    settings = engine_settings(
        database_url=None,
        vector_store="qdrant",
        qdrant_url=None,
        qdrant_path=tmp_path_factory.mktemp("qdrant"),
        transcription_provider="local",
        model_cache_dir=tmp_path_factory.mktemp("models"),
    )
    engine = Engine(settings, service_name="inference-tests")
    engine.start()
    try:
        yield engine
    finally:
        engine.close()


def _batches_run(engine: Engine, model: str = LOCAL_MODEL_ID) -> float:
    value = engine.inference.metrics.registry.get_sample_value(
        "inference_batch_size_count", {"model": model}
    )
    return value or 0.0


SUMMARY_TEXT = (
    "The council approved the new park. Construction starts in spring. "
    "Residents asked for more trees. The budget is two million."
)
USE_CASES: dict[str, Callable[[Engine], object]] = {
    "embeddings.generate": lambda e: e.embeddings.generate("one text"),
    "embeddings.batch": lambda e: e.embeddings.batch(["one", "two"]),
    "embeddings.similarity": lambda e: e.embeddings.similarity("a cat", "a kitten"),
    "analysis.summarize": lambda e: e.analysis.summarize(SUMMARY_TEXT, max_length=10),
    "analysis.classify": lambda e: e.analysis.classify("I love this phone", ["tech", "food"]),
    "rag.index": lambda e: e.rag.index([DocumentInput(id="d1", text="Parks have trees.")]),
    "rag.search": lambda e: e.rag.search("trees"),
    "rag.query": lambda e: e.rag.query("Which places have trees?"),
}


@pytest.mark.parametrize("use_case", list(USE_CASES))
def test_every_embedding_use_case_runs_in_the_runtime(engine: Engine, use_case: str) -> None:
    if use_case.startswith("rag.") and use_case != "rag.index":
        USE_CASES["rag.index"](engine)
    before = _batches_run(engine)
    USE_CASES[use_case](engine)
    assert _batches_run(engine) > before


def test_local_transcription_runs_in_the_runtime(engine: Engine, tmp_path: Path) -> None:
    wav = tmp_path / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "hello world"], check=True, timeout=30)
    rendered = engine.transcription.transcribe(wav.read_bytes(), "hello.wav", "en", "text")
    assert isinstance(rendered.body, str) and "hello" in rendered.body.lower()
    assert _batches_run(engine, LOCAL_WHISPER) == 1


def test_readiness_reports_a_saturated_queue_without_failing(engine: Engine) -> None:
    model = GatedMiniLM("saturation-probe")
    queue = engine.inference.queue(model, max_batch_size=1)
    try:
        held = queue.submit(["first"])
        model.entered.wait(60)
        capacity = queue.limits.queue_size
        waiting = queue.submit(["text"] * capacity)
        check = engine.readiness()["inference"]
        assert not check.ok and not check.required
        assert check.detail is not None
        assert f"saturation-probe {capacity}/{capacity} saturated" in check.detail
    finally:
        model.release(capacity + 1)
        held.result(60)
        waiting.result(60)
    assert f"{LOCAL_MODEL_ID} 0/" in (engine.readiness()["inference"].detail or "")


def test_metrics_render_as_prometheus_text(engine: Engine) -> None:
    engine.embeddings.generate("metrics")
    text = engine.inference.metrics.render().decode()
    for name in (
        "inference_queue_depth",
        "inference_batch_size_bucket",
        "inference_seconds_sum",
        "inference_queue_seconds_count",
        "inference_rejected_total",
    ):
        assert name in text
    assert f'inference_queue_depth{{model="{LOCAL_MODEL_ID}"}} 0.0' in text
    assert CONTENT_TYPE.startswith("text/plain")


def test_the_async_service_path_matches_the_sync_one(engine: Engine) -> None:
    import asyncio

    text = "An awaited embedding."
    awaited = asyncio.run(engine.embeddings.generate_async(text)).embedding
    blocking = engine.embeddings.generate(text).embedding
    assert awaited == pytest.approx(blocking, abs=1e-5)
