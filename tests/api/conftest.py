"""One real engine (pgvector in the session Postgres, local models) for the API tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.core.api.flow import RequestFlow
from backends.core.engine import Engine
from tests.core.engine_fixtures import engine_settings, openai_mock  # noqa: F401

SERVICE_NAME = "api-tests"


@pytest.fixture(scope="package")
def engine(migrated_pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    # Migrated: complexity calibration reads the shared ml_complexity_samples table.
    settings = engine_settings(
        database_url=migrated_pg_url,
        model_cache_dir=tmp_path_factory.mktemp("models"),
        vector_store="pgvector",
        qdrant_url=None,
        qdrant_path=None,
        transcription_provider="local",
    )
    engine = Engine(settings, service_name=SERVICE_NAME)
    engine.start()
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="package")
def api(engine: Engine) -> RequestFlow:
    return RequestFlow(engine, cache_enabled=True)


@pytest.fixture(scope="package")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A short spoken "hello world" (espeak-ng), real speech for Whisper."""
    path: Path = tmp_path_factory.mktemp("audio") / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "hello world"], check=True, timeout=30)
    return path.read_bytes()
