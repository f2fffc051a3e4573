"""The Django backend's background writer against the real shared tables (no server)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from backends.core.persistence.records import CacheRow, RequestRecord
from backends.django_service.mlapi.request_log import BackgroundWriter
from devinfra.ports import free_port
from tests.django_backend.helpers import eventually


@pytest.fixture
def writer(migrated_pg_url: str) -> Iterator[BackgroundWriter]:
    background = BackgroundWriter(migrated_pg_url, interval_s=0.05, batch_size=100)
    background.start()
    yield background
    background.stop()


def _record(request_id: str, **values: Any) -> RequestRecord:
    return RequestRecord.build(
        service_name="django", endpoint="/api/v1/analysis/sentiment", method="POST",
        status_code=200, duration_ms=1.5, request_id=request_id, **values,
    )  # fmt: skip


def _payload(pg: psycopg.Connection[Any], request_id: str) -> Any:
    row = pg.execute(
        "SELECT request_payload FROM ml_service_requests WHERE request_id = %s", (request_id,)
    ).fetchone()
    return None if row is None else (row[0],)


def test_a_hit_counted_before_its_row_exists_is_not_lost(
    writer: BackgroundWriter, pg: psycopg.Connection[Any]
) -> None:
    key = f"mlcache:test:{uuid.uuid4().hex}"
    writer.record_cache_hit(key)  # served by one worker ...
    time.sleep(0.2)  # ... flushed (no row yet) before the caching worker wrote its row
    writer.put_cache(CacheRow(key, "h" * 64, "/api/v1/embeddings/generate", "django",
                              b'{"embedding":[0.5]}', 60))  # fmt: skip

    def hits() -> int | None:
        row = pg.execute("SELECT hit_count FROM ml_service_cache WHERE cache_key = %s", (key,))
        found = row.fetchone()
        return None if found is None else int(found[0])

    assert eventually(lambda: hits() == 1, timeout_s=5)


def test_records_are_sanitised_and_a_broken_one_skipped(
    writer: BackgroundWriter, pg: psycopg.Connection[Any]
) -> None:
    good_id = f"writer-{uuid.uuid4()}"

    def broken() -> RequestRecord:
        raise ValueError("cannot build")

    writer.submit(broken)
    writer.submit(lambda: _record(good_id, request_payload={"text": "a\x00b", "token": "t0k"}))
    stored = eventually(lambda: _payload(pg, good_id), timeout_s=5)
    assert stored == ({"text": "ab", "token": "[redacted]"},)


def test_an_unreachable_database_does_not_block_stop() -> None:
    unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    background = BackgroundWriter(unreachable, interval_s=0.05, batch_size=10, connect_timeout_s=1)
    background.start()
    background.submit(lambda: _record("never-written"))
    time.sleep(0.2)
    started = time.monotonic()
    background.stop(timeout_s=5)
    assert time.monotonic() - started < 5
